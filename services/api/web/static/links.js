// The Share links page: every link the user has not revoked, from the files
// daemon's API, with Revoke (after which the link answers 410 Gone).
import { announce, api, attempt, el, formatTime, serverRoot } from "./lib.js";

const MODES = { read: "view and download", "read-write": "view, download and upload", "upload-only": "upload only" };

// "Folder/path/inside" for a link, from the folder ids the sync API knows.
function describe(link, folders) {
  const folder = folders.get(link.folder) ?? `folder ${link.folder}`;
  return link.path ? `${folder}/${link.path}${link.is_dir ? "/" : ""}` : `${folder}/`;
}

async function refresh() {
  const [links, folderList] = await Promise.all([api("GET", "/files/api/v1/links"), api("GET", "/sync/v1/folders")]);
  const folders = new Map(folderList.map((folder) => [folder.id, folder.name]));
  document.querySelector("#links tbody").replaceChildren(...links.map((link) => {
    const what = describe(link, folders);
    return el("tr", {},
      el("th", { scope: "row" }, what),
      el("td", {}, MODES[link.mode] ?? link.mode),
      el("td", {}, link.has_password ? "yes" : "no"),
      el("td", {}, link.expires_at ? `${formatTime(link.expires_at)}${link.expired ? " (expired)" : ""}` : "never"),
      el("td", {}, String(link.downloads)),
      el("td", {}, link.label),
      // Only the start of the address: the server keeps no copy of a link's secret part.
      el("td", {}, el("span", { class: "link-url" }, serverRoot() + link.shown_url)),
      el("td", {}, el("button", {
        type: "button", class: "danger", "aria-label": `Revoke the link to ${what}`, onclick: () => revoke(link, what),
      }, "Revoke")));
  }));
  document.getElementById("no-links").hidden = links.length > 0;
}

async function revoke(link, what) {
  if (!window.confirm(`Revoke the link to ${what}? Anyone who has it loses access at once.`)) return;
  await attempt(async () => {
    await api("DELETE", `/files/api/v1/links/${link.id}`);
    announce(`Revoked the link to ${what}.`);
    await refresh();
  });
}

attempt(refresh);
