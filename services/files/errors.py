"""WebDAV errors: a lock that was not submitted, and failed preconditions as DAV:error bodies.

They are HTTPErrors, so the one error middleware of services.core.http answers
them; `dav_error_bodies` only swaps the JSON body for the RFC 4918 §16 XML body
when the error names a precondition element.
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Awaitable, Callable

from aiohttp import web

from services.core.errors import Precondition

log = logging.getLogger("files")

DAV = "DAV:"


class Locked(Precondition):
    """423: the resource is locked and the request did not submit the lock's token."""

    def __init__(self, reason: str, href: str, element: str = "lock-token-submitted"):
        super().__init__(DAV, element, reason, status=423, href=href)


def error_body(error: Precondition) -> bytes:
    root = ET.Element(f"{{{DAV}}}error")
    condition = ET.SubElement(root, f"{{{DAV}}}{error.element}")
    if error.href:
        ET.SubElement(condition, f"{{{DAV}}}href").text = error.href
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


@web.middleware
async def dav_error_bodies(request: web.Request,
                           handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """Inside core's error middleware: a Precondition becomes its XML body, logged there as any error."""
    try:
        return await handler(request)
    except Precondition as error:
        response = web.Response(status=error.status, body=error_body(error), content_type="application/xml",
                                charset="utf-8", headers=error.headers)
        log.info("%s %s -> %d: %s", request.method, request.path, error.status, error.reason)
        return response
