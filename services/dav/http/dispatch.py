"""Routing of /dav/ requests by method, OPTIONS, well-known redirects, and DAV error bodies.

`dav_errors` is the one place a failed DAV precondition becomes a response: a
DAV:error XML body naming the precondition (RFC 4918 §16). Other errors go on
to the shared JSON error middleware.
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Awaitable, Callable
from urllib.parse import quote, urljoin

from aiohttp import web

from ..errors import DAV, Precondition
from ..scheduling import outbox
from . import items, mkcol, propfind, proppatch, report, sharing, transfer
from .access import NeedPrivileges, login
from .paths import PREFIX, Target, parse_path
from .xmlio import element, error_body, href, tag

log = logging.getLogger("dav")

Handler = Callable[[web.Request, Target, str], Awaitable[web.StreamResponse]]


async def post(request: web.Request, target: Target, user: str) -> web.StreamResponse:
    """POST by target: free-busy requests to a schedule outbox, sharing requests to other collections."""
    if outbox.is_outbox(target):
        return await outbox.post(request, target, user)
    return await sharing.post(request, target, user)


METHODS: dict[str, Handler] = {
    "PROPFIND": propfind.propfind, "PROPPATCH": proppatch.proppatch,
    "MKCALENDAR": mkcol.mkcalendar, "MKCOL": mkcol.mkcol,
    "GET": items.get, "HEAD": items.get, "PUT": items.put, "DELETE": items.delete,
    "COPY": transfer.copy, "MOVE": transfer.move, "POST": post, "REPORT": report.report,
}
ALLOW = ", ".join(["OPTIONS", *METHODS])
# calendarserver-sharing: Apple clients offer sharing only where it is advertised (caldav-sharing §5.1).
DAV_CLASSES = "1, 3, calendar-access, calendar-auto-schedule, addressbook, extended-mkcol, calendarserver-sharing"


async def dav(request: web.Request) -> web.StreamResponse:
    """Every request under /dav/."""
    if request.method == "OPTIONS":
        return web.Response(headers={"DAV": DAV_CLASSES, "Allow": ALLOW, "MS-Author-Via": "DAV"})
    handler = METHODS.get(request.method)
    if handler is None:
        raise web.HTTPMethodNotAllowed(request.method, ["OPTIONS", *METHODS])
    identity = await login(request)
    return await handler(request, parse_path(request.raw_path.split("?", 1)[0]), identity.user)


async def to_dav_root(request: web.Request) -> web.StreamResponse:
    """RFC 6764 well-known URIs (and /dav without its slash) lead to the DAV root."""
    raise web.HTTPMovedPermanently(PREFIX)


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/.well-known/caldav", to_dav_root)
    app.router.add_route("*", "/.well-known/carddav", to_dav_root)
    app.router.add_route("*", "/dav", to_dav_root)
    app.router.add_route("*", "/dav/{tail:.*}", dav)


@web.middleware
async def dav_errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    try:
        return await handler(request)
    except Precondition as error:
        log.info("%s %s -> %d: %s", request.method, request.path, error.status, error.reason)
        return web.Response(body=error_body(_condition(request, error)), status=error.status,
                            content_type="application/xml", charset="utf-8")


def _condition(request: web.Request, error: Precondition) -> ET.Element:
    node = element(tag(error.namespace, error.element))
    if isinstance(error, NeedPrivileges):
        privilege = element(tag(DAV, "privilege"), children=[element(tag(DAV, error.privilege))])
        node.append(element(tag(DAV, "resource"), children=[href(error.href), privilege]))
    elif error.href:
        # The store names the conflicting item; the client wants its URL, next to the one it asked for.
        node.append(href(urljoin(request.raw_path.split("?", 1)[0], quote(error.href, safe=""))))
    return node
