"""The Nextcloud apps' trash bin at /remote.php/dav/trashbin/USER/, onto the journal's trash.

`trash/` lists the deleted files of the user's own folders (the root-level
files' folder included) as Nextcloud names them: `<name>.d<deletion time>`,
with the original name, the path it had in the user's tree and the deletion
time as nc: properties. `MOVE trash/ITEM` to `restore/…` makes the file's last
content current again through the journal's restore (a new revision); a live
file at that path is never replaced (409: the app says so, the user moves the
live file away first).

DELETE of an item or of the whole trash is refused (403): hearth's retention
purges the trash on its own schedule, and a purge that a phone can trigger is a
way to lose data the household still wants.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote

import sqlite_utils
from aiohttp import web

from services.core.errors import Conflict, Forbidden, MethodNotAllowed, NotFound
from services.core.http import CONFIG, DATABASE
from services.core.multistatus import DAV, MultistatusWriter, xml_bytes_response
from services.core.tree import Revision, list_folders, quota_bytes, restore, trash
from services.core.tree.stamps import dav_file_id, instance_id

from .checksums import carry as carry_checksum
from .context import DEVICE
from .namespace import is_root_files
from .ncspaces import check_restore_destination, http_date, space_user, unique_name, unix_seconds
from .ncprops import NC, OC, nc, oc
from .xmlio import dav

PREFIX = "/remote.php/dav/trashbin/"
ALLOW = "OPTIONS, PROPFIND, MOVE"
WRITER = MultistatusWriter({DAV: "d", OC: "oc", NC: "nc"})


@dataclass(frozen=True)
class Item:
    name: str  # the href's last segment, unique in the listing
    folder: int
    path: str  # the journal path in its folder
    location: str  # the path in the user's tree, without a leading slash
    deleted_at: int  # unix seconds
    last: Revision  # the content a restore brings back
    file_id: int


def items(db: sqlite_utils.Database, user: str) -> list[Item]:
    """The user's restorable deleted files, newest deletion first (expired ones have no content left)."""
    found: list[Item] = []
    taken: set[str] = set()
    for folder in list_folders(db, user):
        if folder.access != "owner":
            continue
        ids = dict(db.execute("SELECT path, file_id FROM entries WHERE folder_id = ? AND deleted = 1 AND kind = 'file'",
                              [folder.id]).fetchall())
        for marker, last in trash(db, folder.id):
            if last is None:
                continue
            deleted_at = unix_seconds(marker.created_at)
            name = unique_name(f"{marker.path.rpartition('/')[2]}.d{deleted_at}", taken)
            location = marker.path if is_root_files(folder) else f"{folder.name}/{marker.path}"
            found.append(Item(name, folder.id, marker.path, location, deleted_at, last, ids[marker.path]))
    found.sort(key=lambda item: -item.deleted_at)
    return found


def _href(user: str, name: str = "") -> str:
    return f"{PREFIX}{quote(user, safe='')}/trash/" + quote(name, safe="")


def _describe(user: str, item: Item, instance: str) -> str:
    last = item.last
    props = [WRITER.property_xml(dav("resourcetype")),
             WRITER.property_xml(dav("getcontentlength"), str(last.size)),
             WRITER.property_xml(dav("getlastmodified"), http_date(last.mtime_ns)),
             WRITER.property_xml(oc("size"), str(last.size)),
             WRITER.property_xml(oc("id"), dav_file_id(item.file_id, instance)),
             WRITER.property_xml(oc("fileid"), str(item.file_id)),
             WRITER.property_xml(nc("trashbin-filename"), item.path.rpartition("/")[2]),
             WRITER.property_xml(nc("trashbin-original-location"), item.location),
             WRITER.property_xml(nc("trashbin-deletion-time"), str(item.deleted_at))]
    return WRITER.response_xml(_href(user, item.name), {200: props})


async def trash_collection(request: web.Request) -> web.StreamResponse:
    user = await space_user(request, "trash")
    if request.method == "PROPFIND":
        depth = request.headers.get("Depth", "1").strip()

        def listing(db: sqlite_utils.Database) -> bytes:
            own = WRITER.response_xml(_href(user), {200: [WRITER.property_xml(dav("resourcetype"),
                                                                              [ET.Element(dav("collection"))])]})
            found = items(db, user) if depth != "0" else []
            instance = instance_id(db)
            return WRITER.multistatus_xml([own, *(_describe(user, item, instance) for item in found)])

        return xml_bytes_response(await request.config_dict[DATABASE].read(listing))
    if request.method == "OPTIONS":
        return web.Response(headers={"DAV": "1", "Allow": ALLOW})
    if request.method == "DELETE":
        raise Forbidden("the trash is emptied by hearth's retention, not by a client")
    raise MethodNotAllowed(f"{request.method} is not served on the trash", headers={"Allow": ALLOW})


async def trash_item(request: web.Request) -> web.StreamResponse:
    user = await space_user(request, "trash")
    name = request.match_info["item"]
    if request.method == "DELETE":
        raise Forbidden("trashed files are purged by hearth's retention, not by a client")
    if request.method == "PROPFIND":
        def one(db: sqlite_utils.Database) -> bytes:
            return WRITER.multistatus_xml([_describe(user, _find(db, user, name), instance_id(db))])
        return xml_bytes_response(await request.config_dict[DATABASE].read(one))
    if request.method != "MOVE":
        raise MethodNotAllowed(f"{request.method} is not served on a trashed file", headers={"Allow": ALLOW})
    check_restore_destination(request, PREFIX, user)
    quota = quota_bytes(request.config_dict[CONFIG])

    def bring_back(db: sqlite_utils.Database) -> None:
        item = _find(db, user, name)
        live = db.execute("SELECT 1 FROM entries WHERE folder_id = ? AND path = ? AND deleted = 0",
                          [item.folder, item.path]).fetchone()
        if live is not None:
            raise Conflict(f"{item.location} exists again: move it away, then restore")
        restored = restore(db, item.folder, item.path, item.last.id, DEVICE, quota=quota)
        carry_checksum(db, item.last.id, restored.id)

    await request.config_dict[DATABASE].write(bring_back)
    return web.Response(status=201)


def _find(db: sqlite_utils.Database, user: str, name: str) -> Item:
    found = next((item for item in items(db, user) if item.name == name), None)
    if found is None:
        raise NotFound(f"no {name} in the trash")
    return found


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", PREFIX + "{user}/trash", trash_collection)
    app.router.add_route("*", PREFIX + "{user}/trash/", trash_collection)
    app.router.add_route("*", PREFIX + "{user}/trash/{item}", trash_item)
