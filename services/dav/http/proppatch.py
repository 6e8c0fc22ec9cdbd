"""PROPPATCH (RFC 4918 §9.2) of a collection's displayname, description, color and timezone.

All or nothing: if any property cannot be changed, it gets 403 and every other
one 424 Failed Dependency, and nothing is stored.
"""
from __future__ import annotations

from aiohttp import web

from services.core.errors import BadRequest
from services.core.http import DATABASE
from services.core.multistatus import multistatus, response_element

from ..errors import DAV
from ..store import update_properties
from .paths import COLLECTION, Target
from .resources import collection_of, load
from .settable import SETTABLE, text_of
from .xmlio import element, read_xml, tag


async def proppatch(request: web.Request, target: Target, user: str) -> web.Response:
    await request.app[DATABASE].read(lambda db: load(db, target, user, "write-properties"))
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
    refused = [name for name, _ in updates if target.level != COLLECTION or name not in SETTABLE]
    if refused:
        accepted = [name for name, _ in updates if name not in refused]
        return multistatus([response_element(target.path, {
            403: [element(name) for name in refused], 424: [element(name) for name in accepted]})])
    changes = {SETTABLE[name]: value for name, value in updates}

    def apply(db):
        update_properties(db, collection_of(db, target, user, "write-properties").id, changes)

    await request.app[DATABASE].write(apply)
    return multistatus([response_element(target.path, {200: [element(name) for name, _ in updates]})])
