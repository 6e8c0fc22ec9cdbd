"""calendar-multiget (RFC 4791 §7.9) and addressbook-multiget (RFC 6352 §8.7): items by href.

Hrefs may be absolute URLs or paths, percent-encoded or not; each must name an
item of the collection the request was sent to (by the URL the client used for
it, so a shared collection works under its mount). Any other href, and an item
that is not there, gets its own 404 response.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from aiohttp import web

from services.core.errors import BadRequest, NotFound
from services.core.http import DATABASE
from services.core.multistatus import xml_bytes_response

from ..errors import DAV
from ..store.queries import items_named
from .paths import ITEM, Target, parse_path
from .report_output import (
    collection_target,
    data_renderer,
    item_response,
    multistatus_body,
    snapshot,
    status_response,
    wanted_props,
)
from .resources import load
from .xmlio import tag


async def multiget(request: web.Request, target: Target, user: str, body: ET.Element) -> web.Response:
    hrefs = [(node.text or "").strip() for node in body.findall(tag(DAV, "href"))]
    if not hrefs:
        raise BadRequest("a multiget needs at least one DAV:href")
    base = collection_target(target)
    wanted = wanted_props(body)
    render = data_renderer(target.kind, wanted.data)
    names = {href: _member(href, base) for href in hrefs}

    def answer(db) -> bytes:
        resource = load(db, base, user, "read")
        found = items_named(db, resource.collection.id, [n for n in names.values() if n is not None],
                            with_raw=wanted.needs_bytes)
        responses = []
        for href in dict.fromkeys(hrefs):
            item = found.get(names[href]) if names[href] is not None else None
            if item is None:
                responses.append(status_response(href, 404))
            else:
                responses.append(item_response(base, resource.collection, item, user, wanted, render))
        return multistatus_body(responses)

    return xml_bytes_response(await request.app[DATABASE].read(snapshot(answer)))


def _member(href: str, base: Target) -> str | None:
    """The item name `href` names in the collection `base`, None for anything else."""
    try:
        named = parse_path(urlsplit(href).path)
    except NotFound:
        return None
    same = (named.user, named.kind, named.collection) == (base.user, base.kind, base.collection)
    return named.item if same and named.level == ITEM else None

