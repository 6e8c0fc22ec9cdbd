"""XML request bodies for the DAV and WebDAV daemons, parsed so that they cannot attack the server.

defusedxml with every DTD refused: external entities and entity-expansion
bombs ("billion laughs") are a 400, never expanded; bodies over the caller's
limit are a 413 before they are parsed.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import defusedxml.ElementTree as SafeET
from aiohttp import web
from defusedxml import DefusedXmlException

from .errors import BadRequest, PayloadTooLarge


async def read_xml(request: web.Request, limit: int) -> ET.Element | None:
    """The request's XML body as an element, None when there is none; BadRequest or PayloadTooLarge."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"XML bodies are limited to {limit} bytes")
    data = await request.content.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"XML bodies are limited to {limit} bytes")
    return parse_xml(data)


def parse_xml(data: bytes) -> ET.Element | None:
    """The body as an element, None when empty; BadRequest when unsafe or not well-formed."""
    if not data.strip():
        return None
    try:
        return SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException as error:
        raise BadRequest(f"XML body refused: {type(error).__name__}") from None
    except ET.ParseError as error:
        raise BadRequest(f"XML body is not well-formed: {error}") from None
