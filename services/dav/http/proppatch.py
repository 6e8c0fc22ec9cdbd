"""PROPPATCH (RFC 4918 §9.2) of a collection's displayname, description, color and timezone, and of the
properties each user keeps for themselves (store/personal.py).

The owner changes the collection itself (and their own calendar-order); a
sharee, even a read-only one, changes only their own name, description,
colour and order for it, as CalendarServer's sharing makes them per-user.
All or nothing: if any property cannot be changed, it gets 403 and every
other one 424 Failed Dependency, and nothing is stored.
"""
from __future__ import annotations

from aiohttp import web

from services.core.errors import BadRequest
from services.core.http import DATABASE
from services.core.multistatus import multistatus, response_element

from ..errors import DAV
from ..store import update_properties
from ..store.personal import set_personal_properties
from .paths import COLLECTION, Target
from .resources import load
from .settable import OWNERS_PERSONAL, PERSONAL, SETTABLE, text_of
from .xmlio import element, read_xml, tag


async def proppatch(request: web.Request, target: Target, user: str) -> web.Response:
    # A sharee may set their own values: reading the collection is enough to reach it.
    needed = "read" if target.level == COLLECTION else "write-properties"
    await request.app[DATABASE].read(lambda db: load(db, target, user, needed))
    body = await read_xml(request)
    if body is None or body.tag != tag(DAV, "propertyupdate"):
        raise BadRequest("PROPPATCH needs a DAV:propertyupdate body")
    updates: list[tuple[str, str | None]] = []  # (Clark name, new value or None to remove), in order
    for action in body:
        if action.tag not in (tag(DAV, "set"), tag(DAV, "remove")):
            continue
        for holder in action.findall(tag(DAV, "prop")):
            updates.extend((prop.tag, text_of(prop) if action.tag == tag(DAV, "set") else None)
                           for prop in holder)

    def apply(db) -> list[str]:
        collection = load(db, target, user, needed).collection
        owner = collection is not None and collection.access == "owner"
        own_values = OWNERS_PERSONAL if owner else PERSONAL
        shared_values = SETTABLE if owner else {}
        refused = [name for name, _ in updates if collection is None
                   or (name not in own_values and name not in shared_values)]
        if refused:
            return refused
        shared = {shared_values[name]: value for name, value in updates if name not in own_values}
        if shared:
            update_properties(db, collection.id, shared)
        personal = {own_values[name]: value for name, value in updates if name in own_values}
        if personal:
            set_personal_properties(db, collection.id, user, personal)
        return []

    refused = await request.app[DATABASE].write(apply)
    if refused:
        accepted = [name for name, _ in updates if name not in refused]
        return multistatus([response_element(target.path, {
            403: [element(name) for name in refused], 424: [element(name) for name in accepted]})])
    return multistatus([response_element(target.path, {200: [element(name) for name, _ in updates]})])
