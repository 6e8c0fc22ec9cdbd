"""The ownCloud and Nextcloud properties (oc:, nc:) the Nextcloud desktop, Android and iOS apps read in
a PROPFIND: file ids, permissions, folder sizes, shares, owner. The desktop refuses an entry without
oc:id and oc:permissions ("Server reported no permission, file id"), so every resource has them.

File ids come from the tree's stamps (services/core/tree/stamps.py): an entry keeps its id when it is
moved or renamed inside its folder; a move to another folder is a copy and a delete in the journal,
so there the file gets a new id.
"""
from __future__ import annotations

from typing import Callable

from services.core.accounts import now_iso
from services.core.multistatus import element
from services.core.previews import can_preview
from services.core.tree.stamps import dav_file_id, instance_id

from .checksums import checksums_of
from .creation import UPLOAD_TIME, upload_time
from .xmlio import NC, OC

USER_SHARE, LINK_SHARE = 0, 3  # Nextcloud's share-type numbers
ROOT_PERMISSIONS = "RGDNVCK"  # the user's root: folders and files may be made there


def oc(name: str) -> str:
    return f"{{{OC}}}{name}"


def nc(name: str) -> str:
    return f"{{{NC}}}{name}"


def permissions(location, resource) -> str:
    """Nextcloud's permission letters, in its order: S shared with me, R may reshare, G readable,
    D delete, NV rename and move, W write (files), CK create files and folders (directories).

    The owner may do everything. On a read-write share the grantee may change everything inside, but
    not rename or delete the shared folder itself (only its owner can) nor share it again. A read-only
    share grants reading only."""
    return letters(location, resource.is_collection)


def letters(location, is_collection: bool) -> str:
    """permissions() of a file or a directory at `location`."""
    if location.is_root:
        return ROOT_PERMISSIONS
    create = "CK" if is_collection else "W"
    access = location.folder.access
    if access == "owner":
        return "RGDNV" + create
    if access == "ro":
        return "SG"
    return "SG" + create if location.is_folder else "SGDNV" + create


def _file_id(ctx, resource):
    return None if resource.file_id is None else str(resource.file_id)


def _oc_id(ctx, resource):
    if resource.file_id is None:
        return None
    if "instance" not in ctx.memo:
        ctx.memo["instance"] = instance_id(ctx.db)
    return dav_file_id(resource.file_id, ctx.memo["instance"])


def _checksums(ctx, resource) -> list:
    if resource.is_collection or resource.revision_id is None:
        return []
    known = ctx.memo.get("checksums", {})
    if resource.revision_id not in known:  # the first file of a listing: read the whole listing's at once
        known = ctx.memo["checksums"] = checksums_of(ctx.db, ctx.listed_revisions | {resource.revision_id})
    found = known[resource.revision_id]
    return [element(oc("checksum"), found)] if found else []


def _share_types(ctx, location) -> list:
    """0 on a folder the caller shares with other users, 3 on what a live share link of theirs opens."""
    folder = location.folder
    if folder is None or folder.access != "owner":
        return []
    key = ("shares", folder.id)
    if key not in ctx.memo:
        by_path: dict[str, set[int]] = {}
        if ctx.db.execute("SELECT 1 FROM folder_shares WHERE folder_id = ? LIMIT 1", [folder.id]).fetchone():
            by_path[""] = {USER_SHARE}
        for path, in ctx.db.execute("""SELECT path FROM share_links WHERE folder_id = ? AND revoked_at IS NULL
                                       AND (expires_at IS NULL OR expires_at > ?)""", [folder.id, now_iso()]):
            by_path.setdefault(path, set()).add(LINK_SHARE)
        ctx.memo[key] = by_path
    return [element(oc("share-type"), str(t)) for t in sorted(ctx.memo[key].get(location.path, ()))]


def _owner(location) -> str:
    return location.folder.owner if location.folder else location.user


def written_file_headers(location) -> dict[str, str]:
    """What Nextcloud answers a file's upload with besides its id and ETag, and the iOS app records
    (NCNetworking+Upload.swift): who owns it and what the uploader may do with it."""
    return {"X-NC-OwnerId": _owner(location), "X-NC-Permissions": letters(location, False)}


def shared_by(location, resource, name: str) -> tuple | None:
    """What the value of `name` depends on when many resources share it (None: each its own), so a big
    listing computes it once per distinct key."""
    if name in _CONSTANT:
        return (name,)
    if name == _PERMISSIONS:
        return name, location.is_root, location.is_folder, location.folder and location.folder.access, \
            resource.is_collection
    if name in _BY_OWNER:
        return name, _owner(location)
    return None


GETTERS: dict[str, Callable] = {
    oc("id"): lambda ctx, loc, res: _oc_id(ctx, res),
    oc("fileid"): lambda ctx, loc, res: _file_id(ctx, res),
    oc("permissions"): lambda ctx, loc, res: permissions(loc, res),
    oc("size"): lambda ctx, loc, res: res.tree_size if res.is_collection else res.size,
    oc("share-types"): lambda ctx, loc, res: _share_types(ctx, loc),
    oc("owner-id"): lambda ctx, loc, res: _owner(loc),
    oc("owner-display-name"): lambda ctx, loc, res: _owner(loc),  # accounts have no other display name
    # The OC-Checksum the file's bytes came with (checksums.py); the journal keeps no whole-file hash of its
    # own (chunks are hashed one by one), so a file uploaded without one has an empty list, never a wrong one.
    oc("checksums"): lambda ctx, loc, res: _checksums(ctx, res),
    # Constant: a changed fingerprint tells the desktop the server was restored from a backup.
    oc("data-fingerprint"): lambda ctx, loc, res: "" if loc.is_root else None,
    # The apps ask for thumbnails (services/files/previews.py) only of files marked so; Android takes a
    # missing value for true, so every file gets an answer.
    nc("has-preview"): lambda ctx, loc, res: "true" if not res.is_collection and can_preview(res.name) else "false",
    nc("is-encrypted"): lambda ctx, loc, res: "0",
    # nc:creation_time is the file's own property, set from X-OC-CTime (creation.py)
    UPLOAD_TIME: lambda ctx, loc, res: upload_time(res),
}
# What an allprop PROPFIND (iOS and other apps send one) lists besides the DAV: properties.
ALLPROP = (oc("id"), oc("fileid"), oc("permissions"), oc("size"), oc("share-types"), oc("owner-id"),
           oc("owner-display-name"), nc("has-preview"))
_CONSTANT = frozenset((nc("is-encrypted"),))
_BY_OWNER = frozenset((oc("owner-id"), oc("owner-display-name")))
_PERMISSIONS = oc("permissions")
