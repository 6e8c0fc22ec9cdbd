"""DAV XML: namespaces, safe parsing of request bodies, multistatus and error bodies.

Request bodies are parsed with defusedxml and any DTD is refused, so external
entities and entity-expansion bombs ("billion laughs") are a 400, never work.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Iterable

import defusedxml.ElementTree as SafeET
from aiohttp import web
from defusedxml import DefusedXmlException

from services.core.errors import BadRequest, PayloadTooLarge

from ..errors import CALDAV, CARDDAV, DAV

CALSERVER = "http://calendarserver.org/ns/"
APPLE = "http://apple.com/ns/ical/"
PREFIXES = {DAV: "D", CALDAV: "C", CARDDAV: "CR", CALSERVER: "CS", APPLE: "A"}
for _uri, _prefix in PREFIXES.items():
    ET.register_namespace(_prefix, _uri)

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
    if request.content_length is not None and request.content_length > MAX_XML_BODY:
        raise PayloadTooLarge(f"XML bodies are limited to {MAX_XML_BODY} bytes")
    data = await request.content.read(MAX_XML_BODY + 1)
    if len(data) > MAX_XML_BODY:
        raise PayloadTooLarge(f"XML bodies are limited to {MAX_XML_BODY} bytes")
    if not data.strip():
        return None
    try:
        return SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as error:
        raise BadRequest(f"XML body refused: {type(error).__name__}") from None
    except ET.ParseError as error:
        raise BadRequest(f"XML body is not well-formed: {error}") from None


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
