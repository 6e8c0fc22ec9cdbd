"""WebDAV errors: statuses the core set lacks, and failed preconditions with their DAV:error element.

They are HTTPErrors, so the one error middleware of services.core.http answers
them; `dav_error_bodies` only swaps the JSON body for the RFC 4918 §16 XML body
when the error names a precondition element.
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Awaitable, Callable

from aiohttp import web

from services.core.errors import HTTPError

log = logging.getLogger("files")

DAV = "DAV:"


class Precondition(HTTPError):
    """A DAV precondition or postcondition failed; `element` (DAV:) names it in the error body."""

    status, code = 403, "precondition"

    def __init__(self, element: str, reason: str, *, status: int = 403, href: str | None = None):
        super().__init__(f"{element}: {reason}")
        self.element, self.status, self.code, self.href = element, status, element, href


class Locked(Precondition):
    """423: the resource is locked and the request did not submit the lock's token."""

    def __init__(self, reason: str, href: str, element: str = "lock-token-submitted"):
        super().__init__(element, reason, status=423, href=href)


class PreconditionFailed(HTTPError):
    """412: If, If-Match, If-None-Match, If-Unmodified-Since or Overwrite: F did not hold; nothing changed."""

    status, code = 412, "precondition-failed"


class MethodNotAllowed(HTTPError):
    status, code = 405, "method-not-allowed"


class UnsupportedMediaType(HTTPError):
    status, code = 415, "unsupported-media-type"


class RangeNotSatisfiable(HTTPError):
    status, code = 416, "range-not-satisfiable"

    def __init__(self, size: int):
        super().__init__(f"the range asked for is outside the file's {size} bytes",
                         headers={"Content-Range": f"bytes */{size}"})


class BadGateway(HTTPError):
    """A Destination on another server (RFC 4918 §9.8.5)."""

    status, code = 502, "bad-gateway"


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
