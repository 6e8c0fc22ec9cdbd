// What every page shares: the session's CSRF token, fetch with it, building
// elements from data (text only, never HTML), announcing results, logging out.

const meta = (name) => document.querySelector(`meta[name="${name}"]`)?.content ?? "";

export const csrfToken = meta("csrf-token");
export const currentUser = meta("user");

export class RequestFailed extends Error {
  constructor(status, reason) {
    super(reason);
    this.status = status;
  }
}

// fetch on this origin with the session cookie and the CSRF token; a 401 means
// the session ended, so the page goes back to the login form.
export async function send(method, url, { body, headers = {}, json } = {}) {
  const init = { method, credentials: "same-origin", headers: { "X-CSRF-Token": csrfToken, ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (body !== undefined) {
    init.body = body;
  }
  const response = await fetch(url, init);
  if (response.status === 401) {
    window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new RequestFailed(401, "your session has ended");
  }
  if (!response.ok && response.status !== 207) {
    throw new RequestFailed(response.status, await reasonOf(response));
  }
  return response;
}

async function reasonOf(response) {
  const text = await response.text();
  try {
    return JSON.parse(text).reason ?? text;
  } catch {
    return text.trim() || `${response.status} ${response.statusText}`;
  }
}

export async function api(method, url, json) {
  const response = await send(method, url, json === undefined ? {} : { json });
  return response.status === 204 ? null : response.json();
}

// el("a", { href: "/x", class: "button" }, "text", otherNode): children that are
// strings become text nodes, so data can never turn into markup.
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function announce(message, { error = false } = {}) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.classList.toggle("error", error);
}

// Runs an action, reporting its failure to the user rather than the console only.
export async function attempt(action) {
  try {
    return await action();
  } catch (error) {
    if (!(error instanceof RequestFailed && error.status === 401)) announce(error.message, { error: true });
    return undefined;
  }
}

export function formatBytes(bytes) {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatTime(iso) {
  if (!iso) return "never";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function serverRoot() {
  return `${location.protocol}//${location.host}`;
}

document.getElementById("logout")?.addEventListener("click", async () => {
  await attempt(() => api("DELETE", "/api/v1/session"));
  window.location.assign("/login");
});
