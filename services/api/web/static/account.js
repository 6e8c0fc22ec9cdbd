// The Account page: your email addresses (invitations to any of them reach your calendar), storage used
// against the quota, and "Download my data" (a plain link to /api/v1/me/export: the browser saves the zip
// as it streams).
import { announce, api, attempt, el, formatBytes } from "./lib.js";

const form = document.getElementById("new-address");
const list = document.getElementById("addresses");

async function showUsage() {
  const usage = await api("GET", "/api/v1/me/usage");
  document.getElementById("usage").textContent = usage.quota_bytes === null
    ? `You use ${formatBytes(usage.used_bytes)}. There is no quota.`
    : `You use ${formatBytes(usage.used_bytes)} of ${formatBytes(usage.quota_bytes)} (${usage.percent}%).`;
}

async function showAddresses() {
  const addresses = await api("GET", "/api/v1/me/addresses");
  list.replaceChildren(...addresses.map((entry) => el("li", {},
    el("code", {}, entry.address), " ",
    entry.default
      ? el("span", { class: "hint" }, "(every user's own; cannot be removed)")
      : el("button", {
        type: "button", class: "danger", "aria-label": `Remove ${entry.address}`,
        onclick: () => remove(entry.address),
      }, "Remove"))));
}

async function remove(address) {
  await attempt(async () => {
    await api("DELETE", `/api/v1/me/addresses/${encodeURIComponent(address)}`);
    announce(`Removed ${address}.`);
    await showAddresses();
  });
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const address = form.elements.address.value.trim();
  await attempt(async () => {
    const added = await api("POST", "/api/v1/me/addresses", { address });
    form.reset();
    announce(`Added ${added.address}.`);
    await showAddresses();
  });
});

attempt(showAddresses);
attempt(showUsage);
