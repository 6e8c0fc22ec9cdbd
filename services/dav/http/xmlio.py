"""DAV XML: namespaces, safe parsing of request bodies, multistatus and error bodies.

Request bodies are parsed with defusedxml and any DTD is refused, so external
entities and entity-expansion bombs ("billion laughs") are a 400, never work.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Iterable, Union

from aiohttp import web

from services.core import safexml

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


# Multistatus bodies of thousands of responses (a PROPFIND or REPORT over a big
# collection) are written as text directly: building and serialising an
# ElementTree costs several times more, and these answers are the hot path.
_ROOT_OPEN = ('<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus'
              + "".join(f' xmlns:{prefix}="{uri}"' for uri, prefix in PREFIXES.items()) + ">")
_ROOT_CLOSE = "</D:multistatus>"


def escape(text: str) -> str:
    """Text content as XML: markup escaped, and CR kept as a character reference (a raw CR would reach
    the client as LF: XML parsers normalise line ends, and calendar data must arrive as stored)."""
    # Chained replace is several times faster than str.translate with a mapping.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")


def property_xml(clark: str, value: Value | None = None) -> str:
    """One property element: empty (value None), with text, or with child elements."""
    name, declare = _qualified(clark)
    if value is None or value == []:
        return f"<{name}{declare}/>"
    if isinstance(value, str):
        return f"<{name}{declare}>{escape(value)}</{name}>"
    return f"<{name}{declare}>{''.join(map(_element_xml, value))}</{name}>"


def response_xml(path: str, found: Iterable[str], missing: Iterable[str] = ()) -> str:
    """One DAV:response from properties already written with property_xml (found: 200) and the names of
    those it does not have (404)."""
    parts = [f"<D:response><D:href>{escape(path)}</D:href>"]
    for props, code in ((found, 200), (missing, 404)):
        text = "".join(props)
        if text:
            parts.append(f"<D:propstat><D:prop>{text}</D:prop><D:status>HTTP/1.1 {code} "
                         f"{STATUS_TEXT[code]}</D:status></D:propstat>")
    parts.append("</D:response>")
    return "".join(parts)


def multistatus_xml(responses: Iterable[str], extra: str = "") -> bytes:
    """The 207 body: responses from response_xml (or ET.tostring), then e.g. a DAV:sync-token."""
    return "".join((_ROOT_OPEN, *responses, extra, _ROOT_CLOSE)).encode("utf-8")


def _element_xml(node: ET.Element) -> str:
    """An element (a property value's child) in the root's prefixes, without redeclaring them."""
    name, declare = _qualified(node.tag)
    attributes = "".join(f' {key}="{escape(value).replace(chr(34), "&quot;")}"' for key, value in node.attrib.items())
    inner = escape(node.text or "") + "".join(map(_element_xml, node))
    tail = escape(node.tail or "")
    if not inner:
        return f"<{name}{declare}{attributes}/>{tail}"
    return f"<{name}{declare}{attributes}>{inner}</{name}>{tail}"


def _qualified(clark: str) -> tuple[str, str]:
    """(prefixed name, namespace declaration it needs) for a Clark name; known namespaces use the root's."""
    namespace, _, local = clark[1:].partition("}")
    prefix = PREFIXES.get(namespace)
    if prefix is not None:
        return f"{prefix}:{local}", ""
    if not clark.startswith("{"):
        return clark, ""
    return f"X:{local}", f' xmlns:X="{escape(namespace).replace(chr(34), "&quot;")}"'
