"""The Nextcloud apps' versions view at /remote.php/dav/versions/USER/versions/FILEID/, onto the journal.

FILEID is a file's oc:fileid (stable across renames within its folder; see
ncprops). The collection lists the file's older revisions with content, named
as Nextcloud names versions: the version's modification time in unix seconds.
GET of one returns its bytes (as user content, like any download); COPY or
MOVE of one to /remote.php/dav/versions/USER/restore/… makes it current
again through the journal's restore: a new revision, so the content it
replaces stays a version in turn.
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote

import sqlite_utils
from aiohttp import web

from services.core.errors import MethodNotAllowed, NotFound
from services.core.http import CONFIG, DATABASE
from services.core.multistatus import DAV, MultistatusWriter, xml_bytes_response
from services.core.tree import Revision, folder_access, list_folders, quota_bytes, restore, versions

from .checksums import carry as carry_checksum
from .context import DEVICE, STORE
from .download import content_headers, send_bytes
from .ncprops import NC, OC, oc
from .ncspaces import check_restore_destination, http_date, space_user, unique_name
from .resources import Resource
from .xmlio import dav

PREFIX = "/remote.php/dav/versions/"
ALLOW = "OPTIONS, PROPFIND, GET, HEAD, COPY, MOVE"
WRITER = MultistatusWriter({DAV: "d", OC: "oc", NC: "nc"})


@dataclass(frozen=True)
class Versioned:
    """A live file of the user's tree and its older revisions with content, by version name."""

    folder: int
    path: str
    older: dict[str, Revision]


# One indexed lookup (entries_file_id): an id names at most one live file.
LIVE_FILE_BY_ID = "SELECT folder_id, path, revision_id FROM entries WHERE file_id = ? AND deleted = 0 AND kind = 'file'"


def versioned(db: sqlite_utils.Database, user: str, file_id: str) -> Versioned:
    """NotFound unless a live file of a folder the user can read has this oc:fileid."""
    row = db.execute(LIVE_FILE_BY_ID, [int(file_id) if file_id.isdigit() else -1]).fetchone()
    if row is None or row[0] not in {f.id for f in list_folders(db, user)}:
        raise NotFound(f"no file with id {file_id[:40]}")
    folder, path, current = row
    older: dict[str, Revision] = {}
    taken: set[str] = set()
    for revision in versions(db, folder, path):
        if revision.id != current and not revision.deleted and revision.kind == "file":
            older[unique_name(str(revision.mtime_ns // 1_000_000_000), taken)] = revision
    return Versioned(folder, path, older)


def _href(user: str, file_id: str, name: str = "") -> str:
    return f"{PREFIX}{quote(user, safe='')}/versions/{quote(file_id, safe='')}/" + quote(name, safe="")


def _etag(revision: Revision) -> str:
    return f'"{revision.id}"'  # the revision's own, as the file's ETag was while it was current


def _describe(user: str, file_id: str, name: str, revision: Revision) -> str:
    props = [WRITER.property_xml(dav("resourcetype")),
             WRITER.property_xml(dav("getcontentlength"), str(revision.size)),
             WRITER.property_xml(dav("getlastmodified"), http_date(revision.mtime_ns)),
             WRITER.property_xml(dav("getetag"), _etag(revision)),
             WRITER.property_xml(oc("size"), str(revision.size))]
    return WRITER.response_xml(_href(user, file_id, name), {200: props})


async def version_collection(request: web.Request) -> web.StreamResponse:
    user = await space_user(request, "versions")
    file_id = request.match_info["file"]
    if request.method == "OPTIONS":
        return web.Response(headers={"DAV": "1", "Allow": ALLOW})
    if request.method != "PROPFIND":
        raise MethodNotAllowed(f"{request.method} is not served on a file's versions", headers={"Allow": ALLOW})
    depth = request.headers.get("Depth", "1").strip()

    def listing(db: sqlite_utils.Database) -> bytes:
        found = versioned(db, user, file_id)
        own = WRITER.response_xml(_href(user, file_id), {200: [
            WRITER.property_xml(dav("resourcetype"), [ET.Element(dav("collection"))])]})
        members = [] if depth == "0" else [_describe(user, file_id, name, revision)
                                           for name, revision in found.older.items()]
        return WRITER.multistatus_xml([own, *members])

    return xml_bytes_response(await request.config_dict[DATABASE].read(listing))


async def version(request: web.Request) -> web.StreamResponse:
    user = await space_user(request, "versions")
    file_id, name = request.match_info["file"], request.match_info["version"]

    def find(db: sqlite_utils.Database) -> tuple[Versioned, Revision]:
        found = versioned(db, user, file_id)
        if name not in found.older:
            raise NotFound(f"file {file_id} has no version {name[:40]}")
        return found, found.older[name]

    if request.method in ("GET", "HEAD"):
        found, revision = await request.config_dict[DATABASE].read(find)
        return await _download(request, found.path, revision)
    if request.method == "PROPFIND":
        _, revision = await request.config_dict[DATABASE].read(find)
        return xml_bytes_response(WRITER.multistatus_xml([_describe(user, file_id, name, revision)]))
    if request.method not in ("COPY", "MOVE"):
        raise MethodNotAllowed(f"{request.method} is not served on a version", headers={"Allow": ALLOW})
    check_restore_destination(request, PREFIX, user)
    quota = quota_bytes(request.config_dict[CONFIG])

    def bring_back(db: sqlite_utils.Database) -> None:
        found, revision = find(db)
        folder_access(db, user, found.folder, write=True)
        restored = restore(db, found.folder, found.path, revision.id, DEVICE, quota=quota)
        carry_checksum(db, revision.id, restored.id)

    await request.config_dict[DATABASE].write(bring_back)
    return web.Response(status=204)


async def _download(request: web.Request, path: str, revision: Revision) -> web.StreamResponse:
    resource = Resource(path, "file", revision.id, revision.size, revision.mtime_ns,
                        json.dumps([list(chunk) for chunk in revision.chunks]), revision.created_at, None)
    response = web.StreamResponse(headers=content_headers(resource))
    response.content_length = revision.size
    await response.prepare(request)
    if request.method == "GET" and revision.size:
        await send_bytes(request.config_dict[STORE], response, resource, 0, revision.size - 1)
    await response.write_eof()
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", PREFIX + "{user}/versions/{file}", version_collection)
    app.router.add_route("*", PREFIX + "{user}/versions/{file}/", version_collection)
    app.router.add_route("*", PREFIX + "{user}/versions/{file}/{version}", version)
