"""sync-collection (RFC 6578): what changed in a collection since a sync token.

Changed members get the properties asked for (calendar-data / address-data
too); deleted ones a response with only their href and 404. With DAV:limit the
answer stops after `nresults` changes, in change order, with a token that
continues exactly there and a 507 response for the request-URI saying more
remain (§3.6). An unknown or foreign token is 403 DAV:valid-sync-token.

Depth: RFC 6578 asks for 0. Depth 1 is accepted too and answered the same,
because widely used clients (python caldav among them) send it; collections
here have no sub-collections, so sync-level "infinite" is answered like "1".
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from aiohttp import web

from services.core.errors import BadRequest
from services.core.http import DATABASE
from services.core.multistatus import xml_bytes_response

from ..errors import DAV
from ..store.queries import changes_page, items_named
from .invites import EMPTY_SYNC_TOKEN
from .paths import ITEM, NOTIFICATIONS, Target
from .report_output import (
    data_renderer,
    item_response,
    multistatus_body,
    parse_limit,
    snapshot,
    status_response,
    truncated_response,
    wanted_props,
)
from .resources import load
from .xmlio import tag

SYNC_LEVELS = ("1", "infinite")


async def sync_collection(request: web.Request, target: Target, user: str, body: ET.Element) -> web.Response:
    depth = request.headers.get("Depth", "0").strip()
    if depth not in ("0", "1"):
        raise BadRequest(f"sync-collection is asked with Depth: 0, not {depth!r}")
    level = (body.findtext(tag(DAV, "sync-level")) or "1").strip()
    if level not in SYNC_LEVELS:
        raise BadRequest(f"sync-level must be 1 or infinite, not {level!r}")
    token = (body.findtext(tag(DAV, "sync-token")) or "").strip() or None
    limit = parse_limit(body, DAV)
    wanted = wanted_props(body)
    render = data_renderer(target.kind, wanted.data)

    def answer(db) -> bytes:
        resource = load(db, target, user, "read")
        if target.level == NOTIFICATIONS:  # always empty: hearth's shares need no answer (invites.py)
            return multistatus_body([], EMPTY_SYNC_TOKEN)
        page = changes_page(db, resource.collection.id, token, limit)
        found = items_named(db, resource.collection.id, page.changed, with_raw=wanted.needs_bytes)
        responses = []
        for name in page.changed:
            item = found.get(name)
            if item is None:  # cannot happen inside one transaction; a 404 is still the truthful answer
                responses.append(status_response(target.child(name, ITEM).path, 404))
            else:
                responses.append(item_response(target, resource.collection, item, user, wanted, render))
        responses.extend(status_response(target.child(name, ITEM).path, 404) for name in page.deleted)
        if page.truncated:
            responses.append(truncated_response(target.path))
        return multistatus_body(responses, page.token)

    return xml_bytes_response(await request.app[DATABASE].read(snapshot(answer)))
