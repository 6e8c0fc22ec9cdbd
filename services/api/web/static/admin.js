import { announce, api, attempt, currentUser, el, formatBytes, formatTime } from "./lib.js";

const dialog = document.getElementById("confirm-delete");
const typed = document.getElementById("confirm-typed");
const confirmButton = document.getElementById("confirm-button");
let deleting = null;

// "1.2 MB of 1.1 GB (0.1%)", or the bytes alone when there is no quota.
function storage(usage) {
  if (!usage) return "";
  const used = formatBytes(usage.used_bytes);
  return usage.quota_bytes === null ? used : `${used} of ${formatBytes(usage.quota_bytes)} (${usage.percent}%)`;
}

function describeQuota(usages) {
  const quota = usages[0]?.quota_bytes ?? null;
  document.getElementById("quota").textContent = (quota === null ? "No storage quota is set."
    : `Every user's quota is ${formatBytes(quota)}.`)
    + " The quota is read-only here: set quota_mb in the [sync] section of hearth.toml, then restart the sync and api services.";
}

async function refreshUsers() {
  const [users, usages] = await Promise.all([api("GET", "/api/v1/users"), api("GET", "/api/v1/admin/usage")]);
  const usageOf = new Map(usages.map((usage) => [usage.user, usage]));
  describeQuota(usages);
  document.querySelector("#users tbody").replaceChildren(...users.map((user) => el("tr", {},
    el("th", { scope: "row" }, user.name),
    el("td", {}, user.is_admin ? "yes" : "no"),
    el("td", {}, formatTime(user.created_at)),
    el("td", {}, String(user.app_passwords)),
    el("td", {}, storage(usageOf.get(user.name))),
    el("td", {}, user.name === currentUser ? "" : el("button", {
      type: "button", class: "danger", "aria-label": `Delete user ${user.name}`, onclick: () => askDelete(user.name),
    }, "Delete")))));
}

function askDelete(name) {
  deleting = name;
  document.getElementById("confirm-name").textContent = name;
  typed.value = "";
  confirmButton.disabled = true;
  dialog.showModal();
  typed.focus();
}

typed.addEventListener("input", () => { confirmButton.disabled = typed.value !== deleting; });

dialog.addEventListener("close", async () => {
  const name = deleting;
  deleting = null;
  if (dialog.returnValue !== "delete" || typed.value !== name) return;
  await attempt(async () => {
    await api("DELETE", `/api/v1/users/${encodeURIComponent(name)}`);
    announce(`Deleted user ${name}.`);
    await refreshUsers();
  });
});

const newUser = document.getElementById("new-user");
newUser.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { name: newUser.elements.name.value.trim(), password: newUser.elements.password.value,
    is_admin: newUser.elements.is_admin.checked };
  await attempt(async () => {
    const user = await api("POST", "/api/v1/users", body);
    newUser.reset();
    announce(`Added user ${user.name}.`);
    await refreshUsers();
  });
});

async function refreshServices() {
  const services = await api("GET", "/api/v1/admin/services");
  document.getElementById("services").replaceChildren(...services.map((service) => el("article", {
    class: `service ${service.up ? "up" : "down"}`, "aria-labelledby": `service-${service.name}`,
  },
  el("h3", { id: `service-${service.name}` }, service.name, " ", el("span", { class: "state" }, service.state)),
  el("p", {}, [
    service.pid ? `pid ${service.pid}` : null,
    service.uptime ? `up ${service.uptime}` : null,
    service.restarts !== null ? `${service.restarts} restarts` : null,
  ].filter(Boolean).join(" · ")),
  service.reason ? el("p", { class: "reason" }, service.reason) : null,
  el("details", {}, el("summary", {}, `Last log lines (${service.log})`),
    el("pre", { class: "log" }, service.log_tail.join("\n") || "(empty)")))));
}

document.getElementById("refresh-services").addEventListener("click", () => attempt(refreshServices));
attempt(refreshUsers);
attempt(refreshServices);
