// The Files page: WebDAV under /files/<user>/ for browsing and changes, the
// sync API (/sync/v1) for what WebDAV has no words for: versions and trash.
import { announce, api, attempt, csrfToken, currentUser, el, formatBytes, formatTime, RequestFailed, send } from "./lib.js";
import { openShareDialog } from "./share.js";

const DAV = "DAV:";
const ROOT = `/files/${encodeURIComponent(currentUser)}/`;
const DEVICE = "web";
const PROPFIND_BODY = `<?xml version="1.0" encoding="utf-8"?>
<d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getcontentlength/><d:getlastmodified/></d:prop></d:propfind>`;

// The folder shown: a path below ROOT, as decoded segments.
function currentSegments() {
  const path = new URLSearchParams(location.search).get("path") ?? "";
  return path.split("/").filter((segment) => segment !== "");
}

const urlOf = (segments, isDir) => ROOT + segments.map(encodeURIComponent).join("/") + (isDir && segments.length ? "/" : "");

function go(segments) {
  const query = segments.length ? `?path=${encodeURIComponent(`/${segments.join("/")}/`)}` : "";
  history.pushState(null, "", `/browse${query}`);
  refresh();
}

window.addEventListener("popstate", () => refresh());

async function listFolder(segments) {
  const url = urlOf(segments, true);
  const response = await send("PROPFIND", url, {
    body: PROPFIND_BODY, headers: { Depth: "1", "Content-Type": "application/xml; charset=utf-8" },
  });
  const xml = new DOMParser().parseFromString(await response.text(), "application/xml");
  const self = new URL(url, location.href).pathname;
  const entries = [];
  for (const item of xml.getElementsByTagNameNS(DAV, "response")) {
    const href = item.getElementsByTagNameNS(DAV, "href")[0]?.textContent ?? "";
    const path = new URL(href, location.href).pathname;
    if (path === self || `${path}/` === self) continue;
    const isDir = item.getElementsByTagNameNS(DAV, "collection").length > 0;
    const name = decodeURIComponent(path.replace(/\/$/, "").split("/").at(-1));
    entries.push({
      name, isDir,
      size: Number(item.getElementsByTagNameNS(DAV, "getcontentlength")[0]?.textContent ?? 0),
      modified: item.getElementsByTagNameNS(DAV, "getlastmodified")[0]?.textContent ?? "",
    });
  }
  entries.sort((a, b) => (b.isDir - a.isDir) || a.name.localeCompare(b.name));
  return entries;
}

function breadcrumbs(segments) {
  const crumbs = [el("li", {}, el("a", { href: "/browse", onclick: (e) => { e.preventDefault(); go([]); } }, "My files"))];
  segments.forEach((segment, index) => {
    const here = segments.slice(0, index + 1);
    const last = index === segments.length - 1;
    crumbs.push(el("li", {}, el("a", {
      href: `/browse?path=${encodeURIComponent(`/${here.join("/")}/`)}`, "aria-current": last ? "page" : false,
      onclick: (e) => { e.preventDefault(); go(here); },
    }, segment)));
  });
  document.getElementById("breadcrumbs").replaceChildren(...crumbs);
}

// At the top, a row is a whole folder: only its owner renames or deletes it (folders shared with
// me are listed as "name (owner)").
function row(segments, entry, mine) {
  const target = [...segments, entry.name];
  const top = segments.length === 0;
  const owned = !top || mine.has(entry.name);
  const name = entry.isDir
    ? el("a", { href: `/browse?path=${encodeURIComponent(`/${target.join("/")}/`)}`,
      onclick: (e) => { e.preventDefault(); go(target); } }, `${entry.name}/`)
    : el("a", { href: urlOf(target, false), download: entry.name }, entry.name);
  const actions = [
    !owned ? null : top
      ? el("button", { type: "button", "aria-label": `Rename folder ${entry.name}`, onclick: () => renameFolder(entry) }, "Rename")
      : el("button", { type: "button", "aria-label": `Rename or move ${entry.name}`, onclick: () => move(segments, entry) }, "Rename"),
    entry.isDir || segments.length === 0 ? null
      : el("button", { type: "button", "aria-label": `Versions of ${entry.name}`, onclick: () => showVersions(segments, entry) }, "Versions"),
    el("button", { type: "button", "aria-label": `Share link for ${entry.name}`, onclick: () => share(segments, entry) }, "Share link…"),
    owned ? el("button", { type: "button", class: "danger", "aria-label": `Delete ${entry.name}`, onclick: () => remove(segments, entry) }, "Delete") : null,
  ];
  return el("tr", {},
    el("th", { scope: "row" }, name),
    el("td", {}, entry.isDir ? "—" : formatBytes(entry.size)),
    el("td", {}, entry.modified ? formatTime(entry.modified) : ""),
    el("td", { class: "actions" }, actions));
}

async function refresh() {
  const segments = currentSegments();
  breadcrumbs(segments);
  await attempt(async () => {
    const entries = await listFolder(segments);
    const mine = segments.length ? new Set()
      : new Set((await api("GET", "/sync/v1/folders")).filter((f) => f.owner === currentUser).map((f) => f.name));
    document.querySelector("#listing tbody").replaceChildren(...entries.map((entry) => row(segments, entry, mine)));
    document.getElementById("empty").hidden = entries.length > 0;
  });
  await attempt(() => showTrash(segments));
  await attempt(() => showDeletedFolders(segments));
}

async function renameFolder(entry) {
  const name = window.prompt(`New name for the folder ${entry.name} (devices syncing it follow):`, entry.name);
  if (name === null || name === entry.name) return;
  if (!name || name.includes("/") || name === "." || name === "..") {
    announce("A folder name cannot be empty, contain / or be . or ..", { error: true });
    return;
  }
  await attempt(async () => {
    try {
      await send("MOVE", urlOf([entry.name], true), {
        headers: { Destination: new URL(urlOf([name], true), location.href).href, Overwrite: "F" },
      });
    } catch (error) {
      if (error instanceof RequestFailed && error.status === 412) {
        throw new Error(`You already have a folder named ${name}: folders are never merged.`);
      }
      throw error;
    }
    announce(`Renamed the folder ${entry.name} to ${name}.`);
    await refresh();
  });
}

// Deleted folders, at the top: restorable until [sync] keep_versions_days runs out.
async function showDeletedFolders(segments) {
  const section = document.getElementById("deleted-folders-section");
  section.hidden = true;
  if (segments.length) return;
  const deleted = await api("GET", "/sync/v1/deleted-folders");
  document.getElementById("deleted-folders").replaceChildren(...deleted.map((folder) => el("li", {},
    el("span", { class: "name" }, folder.name), " ",
    el("span", { class: "muted" }, `deleted ${formatTime(folder.deleted_at)}, ${folder.files} files, ${formatBytes(folder.size)}`), " ",
    el("button", { type: "button", "aria-label": `Restore folder ${folder.name}`,
      onclick: () => restoreFolder(folder) }, "Restore"))));
  section.hidden = deleted.length === 0;
}

async function restoreFolder(folder) {
  await attempt(async () => {
    await api("POST", `/sync/v1/deleted-folders/${folder.id}/restore`, {});
    announce(`Restored the folder ${folder.name}.`);
    await refresh();
  });
}

async function move(segments, entry) {
  const answer = window.prompt(`New name or path (from "My files") for ${entry.name}:`, `/${[...segments, entry.name].join("/")}`);
  if (answer === null) return;
  const target = answer.split("/").filter((s) => s !== "");
  if (!target.length || target.some((s) => s === "." || s === "..")) {
    announce("That is not a path inside your files.", { error: true });
    return;
  }
  await attempt(async () => {
    await send("MOVE", urlOf([...segments, entry.name], entry.isDir), {
      headers: { Destination: new URL(urlOf(target, entry.isDir), location.href).href, Overwrite: "F" },
    });
    announce(`Moved ${entry.name} to /${target.join("/")}.`);
    await refresh();
  });
}

async function share(segments, entry) {
  await attempt(async () => {
    const top = segments.length ? segments[0] : entry.name;
    const folder = await folderOf(top);
    if (!folder || folder.owner !== currentUser) throw new Error("Only the owner of a folder can make links to it.");
    const path = segments.length ? [...segments.slice(1), entry.name].join("/") : "";
    openShareDialog({ folder, path, name: entry.name, isDir: entry.isDir });
  });
}

async function remove(segments, entry) {
  const question = segments.length ? `Delete ${entry.name}? It stays in the trash for a while.`
    : `Delete the folder ${entry.name}? Devices syncing it stop and keep their copies, its shares end; `
      + "you can restore it from Deleted folders for a while.";
  if (!window.confirm(question)) return;
  await attempt(async () => {
    await send("DELETE", urlOf([...segments, entry.name], entry.isDir));
    announce(`Deleted ${entry.name}.`);
    await refresh();
  });
}

document.getElementById("new-folder").addEventListener("click", async () => {
  const name = window.prompt("Name of the new folder:");
  if (!name) return;
  if (name.includes("/") || name === "." || name === "..") {
    announce("A folder name cannot contain / or be . or ..", { error: true });
    return;
  }
  await attempt(async () => {
    await send("MKCOL", urlOf([...currentSegments(), name], true));
    announce(`Created ${name}.`);
    await refresh();
  });
});

// --- uploads: one streamed PUT per file, with progress ---------------------------

function upload(file, segments) {
  const bar = el("progress", { max: "100", value: "0", "aria-label": `Uploading ${file.name}` });
  const item = el("li", {}, el("span", {}, file.name), " ", bar);
  document.getElementById("uploads").append(item);
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open("PUT", urlOf([...segments, file.name], false));
    request.setRequestHeader("X-CSRF-Token", csrfToken);
    request.setRequestHeader("Content-Type", file.type || "application/octet-stream");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = Math.round((100 * event.loaded) / event.total);
    });
    request.addEventListener("loadend", () => {
      const ok = request.status >= 200 && request.status < 300;
      item.replaceChildren(el("span", {}, file.name), " ", ok ? "uploaded" : `failed (${request.status || "network error"})`);
      if (request.status === 401) window.location.assign("/login?next=/browse");
      resolve(ok);
    });
    request.send(file);  // the browser streams the File; it is never read into memory here
  });
}

async function uploadAll(files) {
  const segments = currentSegments();
  if (!files.length) return;
  if (!segments.length) {
    announce("Open a folder first: files live in folders.", { error: true });
    return;
  }
  const results = await Promise.all([...files].map((file) => upload(file, segments)));
  const failed = results.filter((ok) => !ok).length;
  announce(failed ? `${failed} of ${results.length} uploads failed.` : `Uploaded ${results.length} file(s).`, { error: failed > 0 });
  await refresh();
}

const input = document.getElementById("upload-input");
input.addEventListener("change", async () => {
  await uploadAll(input.files);
  input.value = "";
});

const zone = document.getElementById("drop-zone");
zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
zone.addEventListener("dragleave", () => zone.classList.remove("over"));
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  zone.classList.remove("over");
  uploadAll(event.dataTransfer.files);
});

// --- versions and trash, from the sync API -----------------------------------------

// The sync folder behind the first path segment: one of mine by name, or a
// shared one shown as "name (owner)".
async function folderOf(top) {
  const folders = await api("GET", "/sync/v1/folders");
  return folders.find((f) => (f.owner === currentUser ? f.name : `${f.name} (${f.owner})`) === top) ?? null;
}

async function restore(folder, path, revisionId, what) {
  await attempt(async () => {
    await api("POST", `/sync/v1/folders/${folder.id}/restore`, { path, revision_id: revisionId, device: DEVICE });
    announce(`Restored ${what}.`);
    await refresh();
  });
}

async function showTrash(segments) {
  const section = document.getElementById("trash-section");
  section.hidden = true;
  if (!segments.length) return;
  const folder = await folderOf(segments[0]);
  if (!folder) return;
  const below = segments.slice(1).join("/");
  const { items } = await api("GET", `/sync/v1/folders/${folder.id}/trash`);
  const here = items.filter((item) => item.last && (!below || item.deleted.path.startsWith(`${below}/`)));
  document.getElementById("trash").replaceChildren(...here.map((item) => el("li", {},
    el("span", { class: "name" }, item.deleted.path), " ",
    el("span", { class: "muted" }, `deleted ${formatTime(item.deleted.created_at)}, ${formatBytes(item.last.size)}`), " ",
    el("button", { type: "button", "aria-label": `Restore ${item.deleted.path}`,
      onclick: () => restore(folder, item.last.path, item.last.id, item.deleted.path) }, "Restore"))));
  // A device's deletion spree, undone in one step (services/core/tree/deletion_runs.py).
  const sprees = (await api("GET", `/sync/v1/mass-deletions?folder=${folder.id}`)).filter((run) => !run.undone_at);
  document.getElementById("mass-deletions").replaceChildren(...sprees.map((run) => el("li", {},
    el("strong", {}, "Mass deletion: "), `${run.summary}, ${formatTime(run.started_at)} `,
    el("button", { type: "button", "aria-label": `Restore the ${run.files} files of this mass deletion`,
      onclick: () => undoMassDeletion(run) }, `Restore all ${run.files}`))));
  section.hidden = here.length === 0 && sprees.length === 0;
}

async function undoMassDeletion(run) {
  await attempt(async () => {
    await api("POST", `/sync/v1/mass-deletions/${run.id}/undo`);
    announce(`Restored ${run.files} files to ${run.folder}.`);
    await refresh();
  });
}

async function showVersions(segments, entry) {
  await attempt(async () => {
    const folder = await folderOf(segments[0]);
    if (!folder) throw new Error("versions are kept for files in your folders only");
    const path = [...segments.slice(1), entry.name].join("/");
    const { versions } = await api("GET", `/sync/v1/folders/${folder.id}/versions?path=${encodeURIComponent(path)}`);
    document.getElementById("versions-name").textContent = entry.name;
    document.getElementById("versions").replaceChildren(...versions.map((version, index) => el("li", {},
      `${formatTime(version.created_at)} · ${version.deleted ? "deleted" : formatBytes(version.size)} · ${version.device || "unknown device"} `,
      index === 0 || version.deleted ? el("span", { class: "muted" }, index === 0 ? "(current)" : "")
        : el("button", { type: "button", "aria-label": `Restore the version of ${formatTime(version.created_at)}`,
          onclick: () => { document.getElementById("versions-dialog").close(); restore(folder, path, version.id, entry.name); } }, "Restore"))));
    document.getElementById("versions-dialog").showModal();
  });
}

refresh();
