"""POST of a sharing request to a collection: CalendarServer's CS:share and the newer DAV:share-resource.

    <CS:share><CS:set><D:href>/dav/principals/bob/</D:href><CS:read-write/></CS:set>
              <CS:remove><D:href>mailto:carol@…</D:href></CS:remove></CS:share>
    <D:share-resource><D:sharee><D:href>…</D:href>
        <D:share-access><D:read/> | <D:read-write/> | <D:no-access/></D:share-access></D:sharee></D:share-resource>

Only the owner may share. The shares take effect at once (there is no
invitation to accept): the collection appears in the sharee's home. The
whole request is applied in one transaction, or not at all.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

from aiohttp import web

from services.core.errors import BadRequest, Forbidden
from services.core.http import CONFIG, DATABASE

from ..errors import DAV
from ..scheduling.addresses import Settings, local_user
from ..store import revoke_share, share_collection
from .paths import COLLECTION, Target
from .resources import collection_of
from .xmlio import CALSERVER, read_xml, tag

NO_ACCESS = None


async def post(request: web.Request, target: Target, user: str) -> web.Response:
    """POST to a collection: a sharing request (the only kind of POST a collection takes)."""
    body = await read_xml(request)
    if target.level != COLLECTION or body is None or body.tag not in (tag(CALSERVER, "share"),
                                                                      tag(DAV, "share-resource")):
        raise Forbidden(f"POST to {target.path} takes only a CS:share or DAV:share-resource request")
    changes = _changes(body)
    settings = Settings.from_config(request.app[CONFIG].dav)

    def apply(db):
        collection = collection_of(db, target, user, "write")  # the owner's privilege alone
        for href, mode in changes:
            grantee = _user_of(db, href, settings)
            if mode is NO_ACCESS:
                if db.execute("SELECT 1 FROM dav_shares WHERE collection_id = ? AND grantee = ?",
                              [collection.id, grantee]).fetchone():
                    revoke_share(db, collection.id, grantee)
            else:
                share_collection(db, collection.id, grantee, mode)

    await request.app[DATABASE].write(apply)
    return web.Response(status=200)


def _changes(body: ET.Element) -> list[tuple[str, str | None]]:
    """(sharee href, 'read' | 'read-write' | None to remove) in request order."""
    changes = []
    if body.tag == tag(CALSERVER, "share"):
        for action in body:
            href = action.findtext(tag(DAV, "href"), "").strip()
            if action.tag == tag(CALSERVER, "set"):
                changes.append((href, "read-write" if action.find(tag(CALSERVER, "read-write")) is not None
                                else "read"))
            elif action.tag == tag(CALSERVER, "remove"):
                changes.append((href, NO_ACCESS))
    else:
        for sharee in body.iter(tag(DAV, "sharee")):
            access = sharee.find(tag(DAV, "share-access"))
            names = {child.tag for child in access} if access is not None else set()
            mode = ("read-write" if tag(DAV, "read-write") in names else
                    "read" if tag(DAV, "read") in names else NO_ACCESS)
            changes.append((sharee.findtext(tag(DAV, "href"), "").strip(), mode))
    if not changes or not all(href for href, _ in changes):
        raise BadRequest("a sharing request needs at least one sharee, each with a DAV:href")
    return changes


def _user_of(db, href: str, settings: Settings) -> str:
    """The local user a sharee href names: their principal URL or their calendar address."""
    user = local_user(db, href, settings)
    if user is None:
        raise BadRequest(f"sharee {href!r} is not a user of this server")
    return user
