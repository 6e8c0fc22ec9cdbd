"""MKCALENDAR (RFC 4791 §5.3.1) and extended MKCOL (RFC 5689): new calendars and address books.

Settable properties in the body (displayname, description, color, timezone,
the component set) are applied; others are ignored rather than refused,
because real clients send assorted extras.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from aiohttp import web

from services.core.errors import BadRequest
from services.core.http import DATABASE

from ..errors import CALDAV, CARDDAV, DAV, Precondition
from ..store import ADDRESSBOOK, CALENDAR, create_collection, list_collections
from .access import require
from .paths import COLLECTION, Target
from .settable import SETTABLE, set_props, text_of
from .xmlio import read_xml, tag

KIND_ELEMENTS = {tag(CALDAV, "calendar"): CALENDAR, tag(CARDDAV, "addressbook"): ADDRESSBOOK}


async def mkcalendar(request: web.Request, target: Target, user: str) -> web.Response:
    props = set_props(await read_xml(request), tag(CALDAV, "mkcalendar"))
    if target.level != COLLECTION or target.kind != CALENDAR:
        raise Precondition(CALDAV, "calendar-collection-location-ok", "calendars are made in a calendar home")
    return await _create(request, target, user, CALENDAR, props)


async def mkcol(request: web.Request, target: Target, user: str) -> web.Response:
    props = set_props(await read_xml(request), tag(DAV, "mkcol"))
    if target.level != COLLECTION:
        raise Precondition(DAV, "resource-must-be-null", f"cannot make a collection at {target.path}", status=405)
    kinds = {KIND_ELEMENTS[node.tag] for prop in props if prop.tag == tag(DAV, "resourcetype")
             for node in prop if node.tag in KIND_ELEMENTS}
    if kinds - {target.kind}:  # no kind named (a plain MKCOL) makes one of the home's kind
        raise Precondition(DAV, "valid-resourcetype", f"a {target.kind} home holds only {target.kind}s")
    return await _create(request, target, user, target.kind, props)


async def _create(request: web.Request, target: Target, user: str, kind: str, props: list[ET.Element]):
    require("owner" if target.user == user else None, "bind", target.path)  # only in one's own home
    values = {SETTABLE[prop.tag]: text_of(prop) for prop in props if prop.tag in SETTABLE}
    components = _components(props)

    def create(db):
        if any(c.name == target.collection and c.owner == user for c in list_collections(db, user, kind)):
            raise Precondition(DAV, "resource-must-be-null", f"{target.path} already exists", status=405)
        create_collection(db, user, kind, target.collection, components=components, **values)

    await request.app[DATABASE].write(create)
    return web.Response(status=201, headers={"Location": target.path})


def _components(props: list[ET.Element]) -> tuple[str, ...] | None:
    for prop in props:
        if prop.tag == tag(CALDAV, "supported-calendar-component-set"):
            names = tuple(comp.get("name", "") for comp in prop if comp.tag == tag(CALDAV, "comp"))
            if not all(names):
                raise BadRequest("every C:comp needs a name")
            return names or None
    return None
