"""DAV XML: namespaces, safe parsing of request bodies, multistatus and error bodies.

Request bodies are read by services/core/safexml.py (no DTD, no entity expansion);
the generic multistatus pieces live in services/core/multistatus.py, shared with
the files daemon.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Iterable, Union

from aiohttp import web

from services.core import multistatus as text_writer
from services.core import safexml
from services.core.multistatus import element

from ..errors import CALDAV, CARDDAV, DAV

CALSERVER = "http://calendarserver.org/ns/"
APPLE = "http://apple.com/ns/ical/"
PREFIXES = {DAV: "D", CALDAV: "C", CARDDAV: "CR", CALSERVER: "CS", APPLE: "A"}
for _uri, _prefix in PREFIXES.items():
    ET.register_namespace(_prefix, _uri)

Value = Union[str, list[ET.Element]]  # a property's value: text, or child elements
MAX_XML_BODY = 256 * 1024  # PROPFIND/PROPPATCH/MKCOL bodies are small; refuse anything bigger
XML_TYPE = "application/xml; charset=utf-8"


def tag(namespace: str, name: str) -> str:
    """Clark notation, as ElementTree names elements: {DAV:}href."""
    return f"{{{namespace}}}{name}"


def href(path: str) -> ET.Element:
    return element(tag(DAV, "href"), path)


async def read_xml(request: web.Request) -> ET.Element | None:
    """The request's XML body as an element, None when there is no body; BadRequest when unsafe or broken."""
    return await safexml.read_xml(request, MAX_XML_BODY)


def error_body(condition: ET.Element) -> bytes:
    """A DAV:error body naming one precondition (RFC 4918 §16)."""
    return ET.tostring(element(tag(DAV, "error"), children=[condition]), encoding="utf-8",
                       xml_declaration=True)


# Multistatus bodies of thousands of responses (a PROPFIND or REPORT over a big collection) are written
# as text by services/core/multistatus.py, in this module's prefixes.
_WRITER = text_writer.MultistatusWriter(PREFIXES)
escape = text_writer.escape
property_xml = _WRITER.property_xml
multistatus_xml = _WRITER.multistatus_xml
status_response = _WRITER.status_response_xml  # (href, code, DAV: condition or None)


def response_xml(path: str, found: Iterable[str], missing: Iterable[str] = ()) -> str:
    """One DAV:response from properties already written with property_xml (found: 200) and the names of
    those it does not have (404)."""
    return _WRITER.response_xml(path, {200: found, 404: missing})
