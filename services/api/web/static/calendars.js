import { api, attempt, currentUser, el, send, serverRoot } from "./lib.js";

const DAV = "DAV:";
const PROPFIND_BODY = `<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:displayname/><d:resourcetype/></d:prop></d:propfind>`;

const user = encodeURIComponent(currentUser);
const urls = {
  root: `${serverRoot()}/`,
  host: location.host,
  principal: `${serverRoot()}/dav/principals/${user}/`,
  user: currentUser,
};
for (const node of document.querySelectorAll("[data-url]")) node.textContent = urls[node.dataset.url];

// The collections in a DAV home: PROPFIND depth 1, keeping the children that
// are collections themselves (calendars or address books), not the home.
async function collections(home) {
  const response = await send("PROPFIND", home, {
    body: PROPFIND_BODY, headers: { Depth: "1", "Content-Type": "application/xml; charset=utf-8" },
  });
  const xml = new DOMParser().parseFromString(await response.text(), "application/xml");
  const found = [];
  for (const item of xml.getElementsByTagNameNS(DAV, "response")) {
    const href = item.getElementsByTagNameNS(DAV, "href")[0]?.textContent ?? "";
    const path = new URL(href, location.href).pathname;
    const type = item.getElementsByTagNameNS(DAV, "resourcetype")[0];
    const kinds = type ? [...type.children].map((child) => child.localName) : [];
    if (path === new URL(home, location.href).pathname) continue;
    if (!kinds.includes("calendar") && !kinds.includes("addressbook")) continue;
    const name = item.getElementsByTagNameNS(DAV, "displayname")[0]?.textContent || decodeURIComponent(path.split("/").at(-2));
    found.push({ name, url: `${serverRoot()}${path}` });
  }
  return found;
}

async function showHome(home, listId, empty) {
  const list = document.getElementById(listId);
  const found = await collections(home);
  list.replaceChildren(...(found.length ? found.map((collection) => el("li", {},
    el("span", { class: "name" }, collection.name), " ", el("code", {}, collection.url))) : [el("li", {}, empty)]));
}

async function showShares() {
  const shares = await api("GET", "/dav/api/v1/shares");
  document.querySelector("#shares tbody").replaceChildren(...shares.map((share) => el("tr", {},
    el("th", { scope: "row" }, `${share.collection} (${share.home === "calendars" ? "calendar" : "address book"})`),
    el("td", {}, share.owner),
    el("td", {}, share.user),
    el("td", {}, share.mode),
    el("td", {}, el("code", {}, `${serverRoot()}${share.href}`)))));
  document.getElementById("no-shares").hidden = shares.length > 0;
}

attempt(() => showHome(`/dav/calendars/${user}/`, "calendars", "No calendars yet: your app can create one."));
attempt(() => showHome(`/dav/addressbooks/${user}/`, "addressbooks", "No address books yet: your app can create one."));
attempt(showShares);
