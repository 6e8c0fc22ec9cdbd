"""PROPFIND (RFC 4918 §9.1) at depth 0 or 1, and PROPPATCH (§9.2) of dead properties.

Depth infinity (and a missing Depth header, which means infinity) is refused
with 403 DAV:propfind-finite-depth: a client walks a tree one level at a time.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import sqlite_utils
from aiohttp import web

from services.core.errors import BadRequest, Forbidden
from services.core.tree import list_folders

from .context import call_of, check_if, check_locks, existing, writable
from .errors import Precondition
from .liveprops import ALLPROP, LIVE, PropertyContext, live_property
from .namespace import Location, locate, shown_name
from .properties import dead_properties, remove_property, set_property
from .resources import Resource, children, folder_root
from .xmlio import dav, element, multistatus, read_xml, response_element


def _depth(request: web.Request) -> int:
    value = request.headers.get("Depth", "infinity").strip().lower()
    if value == "0":
        return 0
    if value == "1":
        return 1
    if value == "infinity":
        raise Precondition("propfind-finite-depth", "PROPFIND with Depth: infinity is not served; "
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
    if location.is_root:
        return [(Location(location.user, shown_name(f), f, ""), folder_root(f.created_at))
                for f in list_folders(db, location.user)]
    if not resource.is_collection:
        return []
    return [(location.child(member.name), member) for member in children(db, location.folder.id, location.path)]


def _describe(ctx: PropertyContext, location: Location, resource: Resource, kind: str,
              names: list[str]) -> ET.Element:
    dead = dead_properties(ctx.db, location.folder.id, location.path) if location.folder else {}
    by_status: dict[int, list[ET.Element]] = {200: [], 404: []}
    if kind == "propname":
        by_status[200] = [element(dav(n)) for n in ALLPROP] + [element(name) for name in dead]
    else:
        wanted = [dav(n) for n in ALLPROP] + list(dead) if kind == "allprop" else names
        for name in wanted:
            found = None
            if name in LIVE:
                found = live_property(ctx, location, resource, name[len("{DAV:}"):])
            elif name in dead:
                found = dead[name]
            if found is not None:
                by_status[200].append(found)
            elif kind == "prop":  # allprop lists what exists, a named property may be missing
                by_status[404].append(element(name))
    return response_element(location.href(resource.is_collection), by_status)


async def propfind(request: web.Request) -> web.StreamResponse:
    call = await call_of(request)
    depth = _depth(request)
    kind, names = _request_kind(await read_xml(request))
    blobs = call.config.data_path("blobs")

    def describe(db: sqlite_utils.Database) -> list[ET.Element]:
        location = locate(db, call.user, call.segments)
        resource = existing(db, location)
        ctx = PropertyContext(db, call.quota(), blobs, call.user)
        found = [(location, resource)] + (members_of(db, location, resource) if depth else [])
        return [_describe(ctx, loc, res, kind, names) for loc, res in found]

    return multistatus(await call.database.read(describe))


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


async def proppatch(request: web.Request) -> web.StreamResponse:
    """All or nothing (RFC 4918 §9.2): a protected live property fails with 403, the rest with 424."""
    call = await call_of(request)
    updates = _updates(await read_xml(request))

    def apply(db: sqlite_utils.Database) -> ET.Element:
        location = locate(db, call.user, call.segments)
        resource = existing(db, location)
        if location.folder is None:
            raise Forbidden("the top of your tree has no properties to set")
        writable(db, call, location)
        check_if(db, call, location, resource)
        check_locks(db, call, location)
        refused = [prop.tag for _, prop in updates if prop.tag in LIVE]
        if refused:
            statuses = {403: [element(t) for t in refused],
                        424: [element(p.tag) for _, p in updates if p.tag not in LIVE]}
            return response_element(location.href(resource.is_collection), statuses)
        for action, prop in updates:
            if action == "set":
                set_property(db, location.folder.id, location.path, prop)
            else:
                remove_property(db, location.folder.id, location.path, prop.tag)
        return response_element(location.href(resource.is_collection), {200: [element(p.tag) for _, p in updates]})

    return multistatus([await call.database.write(apply)])

