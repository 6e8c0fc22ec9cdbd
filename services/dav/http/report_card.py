"""addressbook-query (RFC 6352 §8.6): the vCards a filter matches, at most `nresults` of them.

A cheap text test on the stored bytes skips cards that cannot match before
vobject reads them (cardfilter.may_match); vobject decides for the rest.
When a limit cuts the answer short, the request-URI gets a 507 response with
DAV:number-of-matches-within-limits (§8.6.1).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from aiohttp import web

from services.core.http import DATABASE
from services.core.multistatus import xml_bytes_response

from ..errors import CARDDAV
from ..query.carddata import AddressData, parse_address_data, render_address_data
from ..query.cardfilter import card_matches, may_match, parse_card_filter, read_card
from ..store import Item, find_item
from ..store.queries import collection_items
from .paths import Target
from .report_output import (
    collection_target,
    item_response,
    multistatus_body,
    parse_limit,
    snapshot,
    truncated_response,
    wanted_props,
)
from .resources import load
from .xmlio import tag


async def addressbook_query(request: web.Request, target: Target, user: str, body: ET.Element) -> web.Response:
    flt = parse_card_filter(body.find(tag(CARDDAV, "filter")))
    limit = parse_limit(body, CARDDAV)
    wanted = wanted_props(body)
    data = parse_address_data(wanted.data) if wanted.data is not None else AddressData()

    def render(item: Item) -> str:
        return render_address_data(item.raw, data)

    def answer(db) -> bytes:
        resource = load(db, target, user, "read")
        base = collection_target(target)
        if resource.item is not None:
            candidates = [find_item(db, resource.collection.id, resource.item.name, with_raw=True)]
        else:
            candidates = collection_items(db, resource.collection.id)
        responses = []
        for item in candidates:
            if not may_match(item.raw, flt):
                continue
            card = read_card(item.raw)
            if card is None or not card_matches(card, flt):
                continue
            if limit is not None and len(responses) == limit:
                responses.append(truncated_response(target.path))
                break
            responses.append(item_response(base, resource.collection, item, user, wanted, render))
        return multistatus_body(responses)

    return xml_bytes_response(await request.app[DATABASE].read(snapshot(answer)))
