"""PROPFIND (RFC 4918 §9.1) at depth 0 or 1, and PROPPATCH (§9.2) of dead properties and the modification time.

Depth infinity (and a missing Depth header, which means infinity) is refused
with 403 DAV:propfind-finite-depth: a client walks a tree one level at a time.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import sqlite_utils
from aiohttp import web

from services.core.errors import BadRequest, Forbidden, Precondition
from services.core.multistatus import DAV, MultistatusWriter, element, multistatus, response_element, xml_bytes_response
from services.core.tree import set_mtime

from . import locks, ncprops
from .context import DEVICE, STORE, call_of, check_if, check_locks, existing, writable
from .liveprops import ALLPROP, LIVE, PropertyContext, live_property
from .ncprops import NC, OC
from .mtimes import SETS_MTIME, property_mtime_ns
from .namespace import Location, root_files_folder, shown_name, top_folders
from .properties import remove_property, set_property
from .resources import Resource, children, folder_root
from .xmlio import dav, read_xml

# d:, oc:, nc: as Nextcloud (Sabre) writes them: the iOS app's parser (NextcloudKit NKDataFileXML, on
# SwiftyXMLParser) matches element names literally, prefix included.
WRITER = MultistatusWriter({DAV: "d", OC: "oc", NC: "nc"})
_LOCKDISCOVERY, _RESOURCETYPE, _SUPPORTEDLOCK = dav("lockdiscovery"), dav("resourcetype"), dav("supportedlock")


def _depth(request: web.Request) -> int:
    value = request.headers.get("Depth", "infinity").strip().lower()
    if value == "0":
        return 0
    if value == "1":
        return 1
    if value == "infinity":
        raise Precondition(DAV, "propfind-finite-depth", "PROPFIND with Depth: infinity is not served; "
                                                    "ask for Depth: 1 level by level")
    raise BadRequest(f"Depth must be 0, 1 or infinity, not {value!r}")


def _request_kind(root: ET.Element | None) -> tuple[str, list[str]]:
    """('allprop' | 'propname' | 'prop', the names asked for)."""
    if root is None:
        return "allprop", []
    if root.tag != dav("propfind"):
        raise BadRequest("PROPFIND body must be a DAV:propfind element")
    for child in root:
        if child.tag == dav("prop"):
            return "prop", [prop.tag for prop in child]
        if child.tag == dav("propname"):
            return "propname", []
        if child.tag == dav("allprop"):
            return "allprop", []
    raise BadRequest("DAV:propfind needs DAV:prop, DAV:propname or DAV:allprop")


def members_of(db: sqlite_utils.Database, location: Location, resource: Resource) -> list[tuple[Location, Resource]]:
    if location.is_root:  # the folders, then the root-level files a folder's name does not hide
        folders = [(location.within(shown_name(f), f, ""), folder_root(db, f))
                   for f in top_folders(db, location.user)]
        root_files = root_files_folder(db, location.user)
        if root_files is None:
            return folders
        taken = {loc.top for loc, _ in folders}
        return folders + [(location.within("", root_files, member.path), member)
                          for member in children(db, root_files.id, "") if member.name not in taken]
    if not resource.is_collection:
        return []
    return [(location.child(member.name), member) for member in children(db, location.folder.id, location.path)]


def _dead_properties(db: sqlite_utils.Database, found: list[tuple[Location, Resource]]) -> dict[tuple, dict[str, str]]:
    """(folder id, path) -> {Clark name: the stored element's text} for every listed resource, read with
    one query per folder rather than one per resource. The stored text is a self-contained element
    (it declares its own namespaces), so it goes into the answer as it is."""
    wanted = {(loc.folder.id, loc.path) for loc, _ in found if loc.folder is not None}
    by_folder: dict[int, list[str]] = {}
    for folder, path in wanted:
        by_folder.setdefault(folder, []).append(path)
    properties: dict[tuple, dict[str, str]] = {key: {} for key in wanted}
    for folder, paths in by_folder.items():
        top = min(paths, key=len)  # one path, or a directory and its members
        if len(paths) == 1:
            where, args = "path = ?", [top]
        elif top == "":
            where, args = "1", []
        else:  # the directory's subtree as one range; deeper paths are dropped below
            where, args = "(path = ? OR (path >= ? AND path < ?))", [top, f"{top}/", f"{top}0"]
        rows = db.execute(f"SELECT path, name, value FROM files_properties WHERE folder_id = ? AND {where}",
                          [folder, *args])
        for path, name, value in rows:
            if (folder, path) in properties:
                properties[(folder, path)][name] = value
    return properties


class _LiveTexts:
    """The live properties of one PROPFIND's resources, as text. liveprops computes every value; a value
    that many resources share is computed once per answer, which at 10,000 members is most of the work:
    supportedlock is the same everywhere, resourcetype is one of two, and lockdiscovery depends only on
    which of the folder's locks cover the resource (usually none)."""

    def __init__(self, ctx: PropertyContext):
        self.ctx = ctx
        self._shared: dict[tuple, str | None] = {}
        self._folder_locks: dict[int, list[locks.Lock]] = {}

    def text(self, location: Location, resource: Resource, name: str) -> str | None:
        """The property's element as text (name: a Clark name), None when the resource has none."""
        key = self._shared_by(location, resource, name)
        if key is None:
            return self._compute(location, resource, name)
        if key not in self._shared:
            self._shared[key] = self._compute(location, resource, name)
        return self._shared[key]

    def _shared_by(self, location: Location, resource: Resource, name: str) -> tuple | None:
        if name == _SUPPORTEDLOCK:
            return (name,)
        if name == _RESOURCETYPE:
            return name, resource.is_collection
        if name == _LOCKDISCOVERY and location.folder is not None:
            folder = location.folder.id
            if folder not in self._folder_locks:
                self._folder_locks[folder] = locks.locks_of(self.ctx.db, folder)
            return name, folder, tuple(lock.token for lock in self._folder_locks[folder] if lock.covers(location.path))
        return ncprops.shared_by(location, resource, name)

    def _compute(self, location: Location, resource: Resource, name: str) -> str | None:
        value = live_property(self.ctx, location, resource, name)
        if value is None:
            return None
        if len(value) or value.attrib:
            return WRITER.element_xml(value)
        return WRITER.property_xml(value.tag, value.text)  # the common case: text only, written directly


def _describe(live: _LiveTexts, location: Location, resource: Resource, kind: str, names: list[str],
              dead: dict[str, str]) -> str:
    """One DAV:response as text: allprop lists what exists, a property asked for by name may be a 404."""
    href = location.href(resource.is_collection)
    if kind == "propname":
        return WRITER.response_xml(href, {200: [WRITER.property_xml(n) for n in ALLPROP]
                                               + [WRITER.property_xml(name) for name in dead]})
    found, missing = [], []
    for name in list(ALLPROP) + list(dead) if kind == "allprop" else names:
        if name in LIVE:
            text = live.text(location, resource, name)
            if text is not None:
                found.append(text)
                continue
        elif name in dead:
            found.append(dead[name])
            continue
        if kind == "prop":
            missing.append(WRITER.property_xml(name))
    return WRITER.response_xml(href, {200: found, 404: missing})


async def propfind(request: web.Request) -> web.StreamResponse:
    call = await call_of(request)
    depth = _depth(request)
    kind, names = _request_kind(await read_xml(request))
    store = request.app[STORE]

    def describe(db: sqlite_utils.Database) -> bytes:
        location = call.locate(db)
        resource = existing(db, location)
        live = _LiveTexts(PropertyContext(db, call.quota(), store, call.user))
        found = [(location, resource)] + (members_of(db, location, resource) if depth else [])
        live.ctx.listed_revisions = {res.revision_id for _, res in found if res.revision_id is not None}
        only_live = kind == "prop" and all(name in LIVE for name in names)
        dead = {} if only_live else _dead_properties(db, found)
        no_dead: dict[str, str] = {}
        return WRITER.multistatus_xml(
            _describe(live, loc, res, kind, names,
                      dead.get((loc.folder.id, loc.path), no_dead) if loc.folder else no_dead)
            for loc, res in found)

    body = await call.database.read(describe)  # written on the reader's thread: the event loop stays free
    return xml_bytes_response(body)


def _updates(root: ET.Element | None) -> list[tuple[str, ET.Element]]:
    if root is None or root.tag != dav("propertyupdate"):
        raise BadRequest("PROPPATCH body must be a DAV:propertyupdate element")
    updates = []
    for action in root:
        if action.tag not in (dav("set"), dav("remove")):
            continue
        for prop_container in action:
            if prop_container.tag != dav("prop"):
                continue
            updates += [("set" if action.tag == dav("set") else "remove", prop) for prop in prop_container]
    if not updates:
        raise BadRequest("PROPPATCH names no property")
    return updates


def _refusals(updates: list[tuple[str, ET.Element]], resource: Resource) -> tuple[dict[str, int], int | None]:
    """The updates that cannot be made, with why (RFC 4918 §9.2.1: 403 a protected property, 409 a value the
    property cannot take), and the modification time the others set (None: they set none)."""
    refused, mtime = {}, None
    for action, prop in updates:
        if prop.tag in SETS_MTIME:
            # A time can be changed, not removed; the folder itself and implied directories keep none.
            if action == "remove" or resource.revision_id is None:
                refused[prop.tag] = 403
            elif (mtime := property_mtime_ns(prop.text)) is None:
                refused[prop.tag] = 409
        elif prop.tag in LIVE:
            refused[prop.tag] = 403
    return refused, mtime


async def proppatch(request: web.Request) -> web.StreamResponse:
    """All or nothing (RFC 4918 §9.2): what cannot be set fails with 403 or 409, the rest with 424.
    getlastmodified (and Windows' Win32LastModifiedTime) set the file's time in the journal."""
    call = await call_of(request)
    updates = _updates(await read_xml(request))

    def apply(db: sqlite_utils.Database) -> ET.Element:
        location = call.locate(db)
        resource = existing(db, location)
        if location.folder is None:
            raise Forbidden("the top of your tree has no properties to set")
        writable(db, call, location)
        check_if(db, call, location, resource)
        check_locks(db, call, location)
        href = location.href(resource.is_collection)
        refused, mtime = _refusals(updates, resource)
        if refused:
            statuses: dict[int, list[ET.Element]] = {}
            for _, prop in updates:
                statuses.setdefault(refused.get(prop.tag, 424), []).append(element(prop.tag))
            return response_element(href, statuses)
        for action, prop in updates:
            if prop.tag in SETS_MTIME:
                continue
            if action == "set":
                set_property(db, location.folder.id, location.path, prop)
            else:
                remove_property(db, location.folder.id, location.path, prop.tag)
        if mtime is not None:
            set_mtime(db, location.folder.id, location.path, resource.revision_id, mtime, DEVICE)
        return response_element(href, {200: [element(p.tag) for _, p in updates]})

    return multistatus([await call.database.write(apply)])
