"""Which server folder a directory syncs with, and what a device does when that folder is renamed or
deleted on the server (from another device's web UI, WebDAV, the sync API or `hearth folder`).

A directory is bound to a folder's id, remembered in DIR/.hearth: the local
directory is the user's, the server's name is a label. So a rename changes the
label and nothing else: the client keeps syncing the same directory and says
so once. A deletion is not an instruction to wipe devices: the server answers
410 (code folder-deleted) and the client stops syncing, keeps every local
file, and says in `hearth sync status` how to bring the folder back; once it
is restored, syncing resumes by itself.
"""
from __future__ import annotations

import logging

from services.core.errors import CommandError, ConfigError
from services.sync.client.context import Context
from services.sync.client.remote import Remote, RemoteError
from services.sync.client.state import ClientState

log = logging.getLogger("hearth.sync")

FOLDER_DELETED_CODE = "folder-deleted"
DELETED_STATE = "folder deleted"


class FolderDeletedOnServer(CommandError):
    """The server folder is in its owner's trash: `hearth sync --once` exits 1 with this line."""


def is_folder_deleted(error: BaseException) -> bool:
    return isinstance(error, RemoteError) and error.status == 410 and error.code == FOLDER_DELETED_CODE


def deleted_line(label: str, reason: str) -> str:
    """One line for `hearth sync status`: what happened, that nothing here was lost, how to undo it."""
    owner, _, name = label.rpartition("/")
    restore = (f"`hearth folder restore {owner} {name}`" if owner else f"`hearth folder restore USER {name}`")
    return (f"stopped: the server folder {label!r} was deleted ({reason}); every file here is kept and "
            f"nothing syncs. To undo, restore it (web UI: Files, Deleted folders; or {restore} on the "
            "server): this client resumes by itself")


def label_of(folder: dict, user: str) -> str:
    """How `--folder` names a folder: NAME for the user's own, OWNER/NAME for one shared with them."""
    return folder["name"] if folder["owner"] == user else f"{folder['owner']}/{folder['name']}"


def _by_label(folders: list[dict], user: str, label: str) -> dict | None:
    return next((f for f in folders if label_of(f, user) == label), None)


async def bind_folder(remote: Remote, state: ClientState, user: str, wanted: str | None,
                      default_name: str) -> tuple[int, str]:
    """(folder id, label) for this directory. A directory synced before stays bound to its folder's id
    whatever the folder is called now (a `--folder` naming its old name is fine); a new one joins the
    user's folder by that name or creates it (create-or-open: devices may start in any order)."""
    folders = await remote.folders()
    known = state.get_meta("folder_id")
    if known is not None:
        current = next((f for f in folders if f["id"] == int(known)), None)
        other = _by_label(folders, user, wanted) if wanted else None
        if other is not None and other["id"] != int(known):
            raise ConfigError(f"this directory is synced with folder {state.get_meta('folder')!r} (id {known}), "
                              f"not {wanted!r}; use another directory for another folder")
        if current is None:  # deleted (or no longer shared): the first cycle hears which and says so
            return int(known), state.get_meta("folder") or wanted or default_name
        return int(known), label_of(current, user)
    label = wanted or state.get_meta("folder") or default_name
    found = _by_label(folders, user, label)
    if found is not None:
        return found["id"], label
    owner, _, short = label.rpartition("/") if "/" in label else (user, "", label)
    if owner != user:
        raise ConfigError(f"no folder {label!r} is shared with {user}")
    return (await remote.create_folder(short))["id"], label


def follow_rename(context: Context, folder: dict | None) -> None:
    """Take the folder's current name (from a change-feed answer) as this directory's label."""
    if not folder:
        return
    state = context.state
    label, before = label_of(folder, context.remote.auth.login), state.get_meta("folder")
    if before is not None and label != before:
        log.info("the server folder %r is now called %r; still syncing %s", before, label, context.root)
        state.set_meta("folder", label)
