import { announce, RequestFailed } from "./lib.js";

const form = document.getElementById("login");

// Only a path on this server: a crafted ?next= must not send anyone elsewhere.
function nextPage() {
  const next = new URLSearchParams(location.search).get("next") ?? "";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = form.elements.user.value.trim();
  const password = form.elements.password.value;
  if (!user || !password) {
    announce("Enter your user name and password.", { error: true });
    (user ? form.elements.password : form.elements.user).focus();
    return;
  }
  announce("Logging in…");
  try {
    const response = await fetch("/api/v1/session", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user, password }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new RequestFailed(response.status, body.reason ?? `login failed (${response.status})`);
    }
    window.location.assign(nextPage());
  } catch (error) {
    announce(error.message, { error: true });
    form.elements.password.select();
  }
});
document.getElementById("user").focus();
