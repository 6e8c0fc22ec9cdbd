"""WebDAV XML: request bodies parsed safely, multistatus bodies built.

Bodies are read with services/core/safexml.py: no DTD, no entity expansion.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Iterable

from aiohttp import web

from services.core import safexml

from .errors import DAV

ET.register_namespace("D", DAV)
MAX_XML_BODY = 1024 * 1024  # PROPFIND/PROPPATCH/LOCK bodies are small; dead properties are capped by it
STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content", 403: "Forbidden", 404: "Not Found",
               409: "Conflict", 423: "Locked", 424: "Failed Dependency", 507: "Insufficient Storage"}


def dav(name: str) -> str:
    """Clark notation of a DAV: element, as ElementTree names it."""
    return f"{{{DAV}}}{name}"


def element(clark: str, text: str | None = None, children: Iterable[ET.Element] = ()) -> ET.Element:
    node = ET.Element(clark)
    if text is not None:
        node.text = text
    node.extend(children)
    return node


async def read_xml(request: web.Request) -> ET.Element | None:
    return await safexml.read_xml(request, MAX_XML_BODY)


def xml_response(root: ET.Element, status: int = 200, headers: dict | None = None) -> web.Response:
    body = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return web.Response(body=body, status=status, content_type="application/xml", charset="utf-8",
                        headers=headers)


def status_line(code: int) -> ET.Element:
    return element(dav("status"), f"HTTP/1.1 {code} {STATUS_TEXT.get(code, '')}".rstrip())


def response_element(href: str, by_status: dict[int, list[ET.Element]]) -> ET.Element:
    """One DAV:response: the href and one propstat per status that has properties."""
    node = element(dav("response"), children=[element(dav("href"), href)])
    for code, props in sorted(by_status.items()):
        if props:
            node.append(element(dav("propstat"), children=[element(dav("prop"), children=props),
                                                           status_line(code)]))
    return node


def status_response(href: str, code: int) -> ET.Element:
    """A DAV:response carrying only a status (a member a COPY, MOVE or DELETE could not handle)."""
    return element(dav("response"), children=[element(dav("href"), href), status_line(code)])


def multistatus(responses: Iterable[ET.Element]) -> web.Response:
    return xml_response(element(dav("multistatus"), children=responses), status=207)
