"""What every REPORT answer is made of: the props asked for, one DAV:response per item, the multistatus.

A REPORT's DAV:prop is read once into `Wanted`; each item's response carries
its live properties (from properties.py) and, when asked, its calendar-data or
address-data text, written as text by xmlio's writers. The body is written in
the worker thread that gathered it, so a 10,000-item answer never blocks the
event loop.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Callable, Iterable, TypeVar

import sqlite_utils

from services.core.errors import BadRequest

from ..errors import CALDAV, CARDDAV, DAV
from ..query.caldata import parse_calendar_data, render_calendar_data
from ..query.carddata import parse_address_data, render_address_data
from ..store import CALENDAR, Collection, Item
from .paths import COLLECTION, ITEM, Target
from .properties import Resource, properties
from .xmlio import escape, multistatus_xml, property_xml, response_xml, status_response, tag

CALENDAR_DATA, ADDRESS_DATA = tag(CALDAV, "calendar-data"), tag(CARDDAV, "address-data")
T = TypeVar("T")


@dataclass(frozen=True)
class Wanted:
    """The properties a REPORT asks for, in order; `data` is the calendar-data/address-data request element."""

    names: tuple[str, ...]
    data: ET.Element | None

    @property
    def needs_bytes(self) -> bool:
        return self.data is not None


def wanted_props(body: ET.Element) -> Wanted:
    """The DAV:prop of a REPORT body (no prop: only hrefs, as RFC 6578 allows)."""
    prop = body.find(tag(DAV, "prop"))
    if prop is None:
        return Wanted((), None)
    data = next((child for child in prop if child.tag in (CALENDAR_DATA, ADDRESS_DATA)), None)
    return Wanted(tuple(child.tag for child in prop), data)


def data_renderer(kind: str, data: ET.Element | None) -> Callable[[Item], str] | None:
    """How to turn an item into its calendar-data / address-data text, as `data` asks (None: not asked)."""
    if data is None:
        return None
    if kind == CALENDAR:
        calendar_request = parse_calendar_data(data)
        return lambda item: render_calendar_data(item.raw, calendar_request)
    card_request = parse_address_data(data)
    return lambda item: render_address_data(item.raw, card_request)


def collection_target(target: Target) -> Target:
    """The collection a REPORT's target lies in (the target itself when it is one)."""
    if target.level == ITEM:
        return Target(COLLECTION, target.user, target.kind, target.collection)
    return target


def item_response(target: Target, collection: Collection, item: Item, user: str, wanted: Wanted,
                  data: Callable[[Item], str] | None) -> str:
    """The DAV:response for one item, its href under the URL the client used for the collection."""
    child = target.child(item.name, ITEM)
    values = properties(Resource(child, collection, item), user) if wanted.names else {}
    data_name = wanted.data.tag if wanted.data is not None else None
    found, missing = [], []
    for name in wanted.names:
        if name == data_name and data is not None:
            found.append(property_xml(name, data(item)))
        elif name in values:
            found.append(property_xml(name, values[name]))
        else:
            missing.append(property_xml(name))
    return response_xml(child.path, found, missing)


def truncated_response(path: str) -> str:
    """RFC 5323 §5.17 / RFC 6578 §3.6: more results exist than the answer holds."""
    return status_response(path, 507, "number-of-matches-within-limits")


def multistatus_body(responses: Iterable[str], sync_token: str | None = None) -> bytes:
    """The 207 body (in xmlio's text form), ending with the DAV:sync-token when there is one."""
    extra = f"<D:sync-token>{escape(sync_token)}</D:sync-token>" if sync_token is not None else ""
    return multistatus_xml(responses, extra)


def parse_limit(body: ET.Element, namespace: str) -> int | None:
    """The nresults of a limit element (DAV: for sync-collection, CardDAV's for addressbook-query)."""
    node = body.find(f"{{{namespace}}}limit/{{{namespace}}}nresults")
    if node is None:
        return None
    try:
        count = int((node.text or "").strip())
    except ValueError:
        count = 0
    if count < 1:
        raise BadRequest(f"nresults must be a positive integer, not {node.text!r}")
    return count


def snapshot(fn: Callable[[sqlite_utils.Database], T]) -> Callable[[sqlite_utils.Database], T]:
    """`fn` run inside one read transaction: every query of a REPORT sees the same state."""
    def run(db: sqlite_utils.Database) -> T:
        db.conn.execute("BEGIN")
        try:
            return fn(db)
        finally:
            if db.conn.in_transaction:
                db.conn.execute("COMMIT")
    return run
