"""DAV XML: namespaces, safe parsing of request bodies, multistatus and error bodies.

Request bodies are parsed with defusedxml and any DTD is refused, so external
entities and entity-expansion bombs ("billion laughs") are a 400, never work.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Iterable, Union

from aiohttp import web

from services.core import multistatus as text_writer, safexml

from ..errors import CALDAV, CARDDAV, DAV

CALSERVER = "http://calendarserver.org/ns/"
APPLE = "http://apple.com/ns/ical/"
PREFIXES = {DAV: "D", CALDAV: "C", CARDDAV: "CR", CALSERVER: "CS", APPLE: "A"}
for _uri, _prefix in PREFIXES.items():
    ET.register_namespace(_prefix, _uri)

Value = Union[str, list[ET.Element]]  # a property's value: text, or child elements
MAX_XML_BODY = 256 * 1024  # PROPFIND/PROPPATCH/MKCOL bodies are small; refuse anything bigger
XML_TYPE = "application/xml; charset=utf-8"
STATUS_TEXT = {200: "OK", 403: "Forbidden", 404: "Not Found", 424: "Failed Dependency"}


def tag(namespace: str, name: str) -> str:
    """Clark notation, as ElementTree names elements: {DAV:}href."""
    return f"{{{namespace}}}{name}"


def element(clark: str, text: str | None = None, children: Iterable[ET.Element] = ()) -> ET.Element:
    node = ET.Element(clark)
    if text is not None:
        node.text = text
    node.extend(children)
    return node


def href(path: str) -> ET.Element:
    return element(tag(DAV, "href"), path)


async def read_xml(request: web.Request) -> ET.Element | None:
    """The request's XML body as an element, None when there is no body; BadRequest when unsafe or broken."""
    return await safexml.read_xml(request, MAX_XML_BODY)


def xml_response(root: ET.Element, status: int = 200, headers: dict | None = None) -> web.Response:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return web.Response(body=body, status=status, content_type="application/xml", charset="utf-8",
                        headers=headers)


def status_line(code: int) -> ET.Element:
    return element(tag(DAV, "status"), f"HTTP/1.1 {code} {STATUS_TEXT.get(code, '')}".rstrip())


def propstat(props: list[ET.Element], code: int) -> ET.Element:
    return element(tag(DAV, "propstat"), children=[element(tag(DAV, "prop"), children=props), status_line(code)])


def response_element(path: str, by_status: dict[int, list[ET.Element]]) -> ET.Element:
    """One DAV:response: the href and a propstat per status that has properties."""
    return element(tag(DAV, "response"), children=[href(path), *(
        propstat(props, code) for code, props in sorted(by_status.items()) if props)])


def multistatus(responses: Iterable[ET.Element]) -> web.Response:
    return xml_response(element(tag(DAV, "multistatus"), children=responses), status=207)


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


def response_xml(path: str, found: Iterable[str], missing: Iterable[str] = ()) -> str:
    """One DAV:response from properties already written with property_xml (found: 200) and the names of
    those it does not have (404)."""
    return _WRITER.response_xml(path, {200: found, 404: missing})
