import { announce, api, attempt, el, formatTime } from "./lib.js";

const form = document.getElementById("new-device");
const rows = document.querySelector("#devices tbody");

async function refresh() {
  const passwords = await api("GET", "/api/v1/me/app-passwords");
  rows.replaceChildren(...passwords.map((password) => el("tr", {},
    el("th", { scope: "row" }, password.label),
    el("td", {}, formatTime(password.created_at)),
    el("td", {}, formatTime(password.last_used_at)),
    el("td", {}, el("button", {
      type: "button", class: "danger", "aria-label": `Revoke ${password.label}`,
      onclick: () => revoke(password),
    }, "Revoke")))));
  document.getElementById("no-devices").hidden = passwords.length > 0;
}

async function revoke(password) {
  if (!window.confirm(`Revoke the app password of "${password.label}"? That device stops syncing.`)) return;
  await attempt(async () => {
    await api("DELETE", `/api/v1/me/app-passwords/${password.id}`);
    announce(`Revoked ${password.label}.`);
    await refresh();
  });
}

function show(device) {
  document.getElementById("created-label").textContent = device.label;
  document.getElementById("created-user").textContent = device.user;
  document.getElementById("created-password").textContent = device.password;
  document.getElementById("created-server").textContent = device.server;
  document.getElementById("created-setup-url").textContent = device.setup_url;
  document.getElementById("created-qr").src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(device.qr_svg)}`;
  const created = document.getElementById("created");
  created.hidden = false;
  created.querySelector("h3").tabIndex = -1;
  created.querySelector("h3").focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const label = form.elements.label.value.trim();
  if (!label) {
    announce("Give the device a name.", { error: true });
    form.elements.label.focus();
    return;
  }
  await attempt(async () => {
    const device = await api("POST", "/api/v1/me/devices", { label });
    form.reset();
    show(device);
    announce(`Created an app password for ${device.label}.`);
    await refresh();
  });
});

attempt(refresh);
