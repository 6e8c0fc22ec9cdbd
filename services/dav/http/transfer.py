"""COPY and MOVE of calendar objects and vCards (RFC 4918 §9.8, §9.9).

Items only: collections are created and removed, not copied or moved, so a
COPY or MOVE of one is refused. The Destination may be any item URL the user
may write to (another collection, a shared one); `Overwrite: F` keeps what is
there (412). The store validates the destination like a PUT.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from services.core.errors import BadRequest, Forbidden
from services.core.http import DATABASE

from ..store import copy_item, move_item
from .paths import ITEM, Target, parse_path
from .resources import collection_of


async def copy(request: web.Request, target: Target, user: str) -> web.Response:
    return await _transfer(request, target, user, move=False)


async def move(request: web.Request, target: Target, user: str) -> web.Response:
    return await _transfer(request, target, user, move=True)


async def _transfer(request: web.Request, target: Target, user: str, *, move: bool) -> web.Response:
    if target.level != ITEM:
        raise Forbidden(f"{request.method} of {target.path}: only calendar objects and vCards can be "
                        f"copied or moved")
    destination = _destination(request)
    overwrite = request.headers.get("Overwrite", "T").strip().upper() != "F"
    if_match = request.headers.get("If-Match")

    def apply(db):
        source = collection_of(db, target, user, "unbind" if move else "read")
        into = collection_of(db, destination, user, "write-content")
        if move:
            return move_item(db, source.id, target.item, into.id, destination.item, overwrite=overwrite,
                             if_match=if_match)
        return copy_item(db, source.id, target.item, into.id, destination.item, overwrite=overwrite)

    item, created = await request.app[DATABASE].write(apply)
    headers = {"ETag": item.etag, "Location": destination.path} if created else {"ETag": item.etag}
    return web.Response(status=201 if created else 204, headers=headers)


def _destination(request: web.Request) -> Target:
    """The Destination header as an item Target on this server (RFC 4918 §10.3)."""
    header = request.headers.get("Destination")
    if not header:
        raise BadRequest(f"{request.method} needs a Destination header")
    # The host is not compared: behind the front end and a tunnel the client's
    # name for this server need not be the Host this daemon sees.
    destination = parse_path(urlsplit(header.strip()).path)
    if destination.level != ITEM:
        raise Forbidden(f"Destination {destination.path} is not an item in a collection")
    return destination
