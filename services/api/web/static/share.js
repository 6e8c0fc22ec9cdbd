// The "Share link…" dialog of the Files page: creates a public link through the
// files daemon's API (/files/api/v1/links) and shows its full address to copy.
import { announce, api, attempt, serverRoot } from "./lib.js";

const dialog = document.getElementById("link-dialog");
const form = document.getElementById("link-form");
const created = document.getElementById("link-created");
const urlField = document.getElementById("link-url");
let sharing = null; // { folder, path, name, isDir } while the dialog is open

export function openShareDialog(target) {
  sharing = target;
  form.reset();
  form.hidden = false;
  created.hidden = true;
  document.getElementById("link-name").textContent = target.name;
  // A file link is read-only (the server says so too); only folders offer the other modes.
  document.getElementById("link-modes").hidden = !target.isDir;
  document.getElementById("link-file-mode").hidden = target.isDir;
  form.elements.expires.min = new Date().toISOString().slice(0, 10);
  dialog.showModal();
  form.querySelector(target.isDir ? "input[name=mode]:checked" : "#link-password").focus();
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = {
    folder: sharing.folder.id,
    path: sharing.path,
    mode: sharing.isDir ? form.elements.mode.value : "read",
    password: form.elements.password.value || null,
    expires: form.elements.expires.value || null,
    label: form.elements.label.value.trim(),
  };
  const button = document.getElementById("link-create");
  button.disabled = true;
  await attempt(async () => {
    const link = await api("POST", "/files/api/v1/links", body);
    urlField.value = serverRoot() + link.url;
    form.hidden = true;
    created.hidden = false;
    urlField.focus();
    urlField.select();
    announce(`Created a share link for ${sharing.name}.`);
  });
  button.disabled = false;
});

document.getElementById("link-copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText(urlField.value);
  } catch {
    // No clipboard access (an insecure origin, or permission refused): leave it selected to copy by hand.
    urlField.select();
    announce("Copying was not allowed here: the link is selected, copy it with Ctrl+C.", { error: true });
    return;
  }
  announce("Link copied.");
});

const close = () => dialog.close();
document.getElementById("link-cancel").addEventListener("click", close);
document.getElementById("link-done").addEventListener("click", close);
dialog.addEventListener("close", () => { sharing = null; });
