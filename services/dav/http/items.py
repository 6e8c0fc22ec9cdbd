"""GET, HEAD, PUT and DELETE: calendar objects and vCards byte for byte, with strong ETags.

The store validates and decides (If-Match, If-None-Match: *, UIDs, size);
this module only moves bytes and headers. DELETE also removes collections.
"""
from __future__ import annotations

from aiohttp import web

from services.core.errors import Forbidden
from services.core.http import CONFIG, DATABASE

from ..errors import Precondition, namespace_of
from ..scheduling.addresses import Settings
from ..scheduling.implicit import scheduled_delete, scheduled_put
from ..scheduling.sender import wake_sender
from ..scheduling.tags import schedule_tag
from ..store import MAX_RESOURCE_SIZE, delete_collection, get_item, revoke_share
from .paths import COLLECTION, ITEM, Target
from .properties import CONTENT_TYPES
from .resources import collection_of, load

# An oversize body is read (and dropped) up to here, so the client is still listening for the answer.
DRAIN_LIMIT = 16 * MAX_RESOURCE_SIZE


async def get(request: web.Request, target: Target, user: str) -> web.Response:
    _require_item(target, request.method)

    def fetch(db):
        collection = collection_of(db, target, user, "read")
        return get_item(db, collection.id, target.item), schedule_tag(db, collection.id, target.item)

    item, tag = await request.app[DATABASE].read(fetch)
    headers = {"Content-Type": CONTENT_TYPES[target.kind], "ETag": item.etag}
    if tag:  # a scheduling object resource (RFC 6638 §3.2.10)
        headers["Schedule-Tag"] = tag
    return web.Response(body=item.raw, headers=headers)


async def put(request: web.Request, target: Target, user: str) -> web.Response:
    _require_item(target, "PUT")
    await request.app[DATABASE].read(lambda db: collection_of(db, target, user, "write-content"))
    raw = await _read_body(request, target.kind)
    if_match = request.headers.get("If-Match")
    if_none_match = request.headers.get("If-None-Match", "").strip() == "*"

    settings, schedule_reply = Settings.from_config(request.app[CONFIG].dav), _schedule_reply(request)
    if_schedule_tag_match = request.headers.get("If-Schedule-Tag-Match")

    def store(db):
        collection = collection_of(db, target, user, "write-content")
        return scheduled_put(db, settings, collection, target.item, raw, if_match=if_match,
                             if_none_match=if_none_match, if_schedule_tag_match=if_schedule_tag_match,
                             schedule_reply=schedule_reply)

    item, created, outcome = await request.app[DATABASE].write(store)
    if outcome.mail_queued:
        wake_sender(request.app)
    # Bytes the server changed (SCHEDULE-STATUS) get no ETag, so the client fetches them (RFC 6638 §3.2).
    headers = {} if outcome.rewritten else {"ETag": item.etag}
    if outcome.schedule_tag:
        headers["Schedule-Tag"] = outcome.schedule_tag
    return web.Response(status=201 if created else 204, headers=headers)


async def delete(request: web.Request, target: Target, user: str) -> web.Response:
    if target.level not in (COLLECTION, ITEM):
        await request.app[DATABASE].read(lambda db: load(db, target, user, "unbind"))
        raise Forbidden(f"{target.path} cannot be deleted")
    if_match = request.headers.get("If-Match")
    settings, schedule_reply = Settings.from_config(request.app[CONFIG].dav), _schedule_reply(request)

    def remove(db):
        if target.level == ITEM:
            collection = collection_of(db, target, user, "unbind")
            return scheduled_delete(db, settings, collection, target.item, if_match=if_match,
                                    if_schedule_tag_match=request.headers.get("If-Schedule-Tag-Match"),
                                    schedule_reply=schedule_reply).mail_queued
        collection = collection_of(db, target, user, "read")
        if collection.access == "owner":
            delete_collection(db, collection.id)
        else:  # a grantee deleting a shared collection leaves it: the owner's data stays
            revoke_share(db, collection.id, user)

    if await request.app[DATABASE].write(remove):
        wake_sender(request.app)
    return web.Response(status=204)


def _schedule_reply(request: web.Request) -> bool:
    """Schedule-Reply: F (RFC 6638 §8.1): the attendee's client tells the organizer itself."""
    return request.headers.get("Schedule-Reply", "T").strip().upper() != "F"


def _require_item(target: Target, method: str) -> None:
    if target.level != ITEM:
        raise web.HTTPMethodNotAllowed(method, ["OPTIONS", "PROPFIND", "PROPPATCH", "DELETE"])


async def _read_body(request: web.Request, kind: str) -> bytes:
    """The body, or max-resource-size once it passes MAX_RESOURCE_SIZE (the rest is drained, within reason)."""
    too_big = Precondition(namespace_of(kind), "max-resource-size",
                           f"larger than the limit of {MAX_RESOURCE_SIZE} bytes")
    if request.content_length is not None and request.content_length > DRAIN_LIMIT:
        raise too_big
    chunks, total = [], 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        total += len(chunk)
        if total > DRAIN_LIMIT:
            raise too_big
        if total <= MAX_RESOURCE_SIZE:
            chunks.append(chunk)
    if total > MAX_RESOURCE_SIZE:
        raise too_big
    return b"".join(chunks)
