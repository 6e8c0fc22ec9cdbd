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
