"""The collection properties a client may set (MKCALENDAR, extended MKCOL, PROPPATCH), by XML name."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from services.core.errors import BadRequest

from ..errors import CALDAV, CARDDAV, DAV
from .xmlio import APPLE, tag

SETTABLE = {
    tag(DAV, "displayname"): "displayname",
    tag(CALDAV, "calendar-description"): "description",
    tag(CARDDAV, "addressbook-description"): "description",
    tag(APPLE, "calendar-color"): "color",
    tag(CALDAV, "calendar-timezone"): "timezone",
}


# What a user may set for themselves alone on a collection they reach (store/personal.py): a sharee all of
# these, the owner only the order (their other values are the collection's own, above).
PERSONAL = {
    tag(DAV, "displayname"): "displayname",
    tag(CALDAV, "calendar-description"): "description",
    tag(CARDDAV, "addressbook-description"): "description",
    tag(APPLE, "calendar-color"): "color",
    tag(APPLE, "calendar-order"): "order",
}
OWNERS_PERSONAL = {tag(APPLE, "calendar-order"): "order"}


def personal_clark(kind: str, name: str) -> str:
    """The property a personal value is reported as, in a collection of this kind."""
    if name == "description":
        return tag(CALDAV, "calendar-description") if kind == "calendar" else tag(CARDDAV, "addressbook-description")
    return next(clark for clark, personal in PERSONAL.items() if personal == name)


def text_of(node: ET.Element) -> str:
    """A property's value as text: its character content (a timezone is a whole VCALENDAR)."""
    return "".join(node.itertext()).strip()


def set_props(body: ET.Element | None, wrapper: str) -> list[ET.Element]:
    """The property elements under `wrapper`/DAV:set/DAV:prop of a MKCALENDAR or MKCOL body."""
    if body is None:
        return []
    if body.tag != wrapper:
        raise BadRequest(f"the body must be a {wrapper} element")
    return [prop for node in body.findall(tag(DAV, "set")) for holder in node.findall(tag(DAV, "prop"))
            for prop in holder]
