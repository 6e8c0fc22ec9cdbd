import { announce, RequestFailed } from "./lib.js";

const form = document.getElementById("login");

// Only a page of this server: a crafted ?next= must not send anyone elsewhere. The server judged it
// (web/next_page.py); this browser's own URL parser has the last word, and only an absolute URL of
// this origin is followed.
function nextPage() {
  const wanted = document.querySelector('meta[name="next"]')?.content || "/";
  const target = new URL(wanted, location.origin);
  return target.origin === location.origin ? target.href : "/";
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
