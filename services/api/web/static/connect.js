// Approve or deny a Nextcloud app's sign-in (services/api/nextcloud/login_flow.py).
// Login Flow v2: the app is polling and picks up its app password by itself.
// Login Flow v1: the web view is sent to the nc:// address the server returns, which the app intercepts.
import { announce, api, attempt } from "./lib.js";

const device = document.querySelector('meta[name="device"]')?.content ?? "";
const card = document.getElementById("connect");
document.getElementById("device").textContent = device;

async function decide(approve) {
  for (const button of card.querySelectorAll("button")) button.disabled = true;
  const result = await attempt(() => api("POST", location.pathname, { approve }));
  if (result === undefined) {
    for (const button of card.querySelectorAll("button")) button.disabled = false;
    return;
  }
  card.hidden = true;
  if (result.redirect) {
    announce(`Access granted to ${device}.`);
    window.location.assign(result.redirect);
  } else if (approve) {
    announce(`Access granted to ${device}. You can close this window and go back to the app.`);
  } else {
    announce(`Access denied: ${device} was not connected. You can close this window.`);
  }
}

document.getElementById("approve").addEventListener("click", () => decide(true));
document.getElementById("deny").addEventListener("click", () => decide(false));
