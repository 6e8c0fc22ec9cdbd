"""POST of a sharing request: CalendarServer's CS:share and the newer DAV:share-resource to a collection,
and CalendarServer's CS:invite-reply to the sharee's home.

    <CS:share><CS:set><D:href>/dav/principals/bob/</D:href><CS:read-write/></CS:set>
              <CS:remove><D:href>mailto:carol@…</D:href></CS:remove></CS:share>
    <D:share-resource><D:sharee><D:href>…</D:href>
        <D:share-access><D:read/> | <D:read-write/> | <D:no-access/></D:share-access></D:sharee></D:share-resource>
    <CS:invite-reply><D:href>…</D:href><CS:invite-accepted/> | <CS:invite-declined/>
        <CS:hosturl><D:href>/dav/calendars/alice/family/</D:href></CS:hosturl>…</CS:invite-reply>

Only the owner may share, and only with users of this server. The shares take
effect at once (there is no invitation to accept): the collection appears in
the sharee's home. The whole request is applied in one transaction, or not at
all: a sharee who is not a user makes it a 207 naming them (403, with the
reason) and the others (424), as CalendarServer answers. An invite-reply
accepting a share answers where it is (CS:shared-as); declining leaves it.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

from aiohttp import web

from services.core.errors import BadRequest, Forbidden, NotFound
from services.core.http import CONFIG, DATABASE
from services.core.multistatus import multistatus, status_line, xml_response

from ..errors import DAV
from ..scheduling.addresses import Settings, local_user
from ..store import revoke_share, share_collection
from ..store.sharing import access_of, mount_name
from .paths import COLLECTION, HOME, Target, parse_path
from .resources import collection_of
from .xmlio import CALSERVER, element, href, read_xml, tag

NO_ACCESS = None
SHARE, SHARE_RESOURCE = tag(CALSERVER, "share"), tag(DAV, "share-resource")
INVITE_REPLY = tag(CALSERVER, "invite-reply")


async def post(request: web.Request, target: Target, user: str) -> web.Response:
    """POST to a collection (a sharing request) or to one's own home (a reply to a share)."""
    body = await read_xml(request)
    if body is not None and body.tag == INVITE_REPLY and target.level == HOME and target.user == user:
        return await _invite_reply(request, target, user, body)
    if target.level != COLLECTION or body is None or body.tag not in (SHARE, SHARE_RESOURCE):
        raise Forbidden(f"POST to {target.path} takes only a CS:share or DAV:share-resource request, "
                        "or a CS:invite-reply to one's own calendar home")
    changes = _changes(body)
    settings = Settings.from_config(request.app[CONFIG].dav)

    def apply(db) -> list[str]:
        collection = collection_of(db, target, user, "write")  # the owner's privilege alone
        sharees = [(href, local_user(db, href, settings), mode) for href, mode in changes]
        strangers = [href for href, grantee, _ in sharees if grantee is None]
        if strangers:
            return strangers
        for _, grantee, mode in sharees:
            if mode is NO_ACCESS:
                if access_of(db, collection, grantee) not in (None, "owner"):
                    revoke_share(db, collection.id, grantee)
            else:
                share_collection(db, collection.id, grantee, mode)
        return []

    strangers = await request.app[DATABASE].write(apply)
    if strangers:
        return multistatus(_refusal(href, href in strangers) for href, _ in changes)
    return web.Response(status=200)


def _refusal(sharee: str, stranger: bool) -> ET.Element:
    """One sharee's part of a refused request: 403 and why for a non-user, 424 for the rest."""
    if stranger:
        return element(tag(DAV, "response"), children=[
            href(sharee), status_line(403),
            element(tag(DAV, "responsedescription"),
                    f"{sharee} is not a member of this household: calendars are shared with its users only")])
    return element(tag(DAV, "response"), children=[href(sharee), status_line(424)])


def _changes(body: ET.Element) -> list[tuple[str, str | None]]:
    """(sharee href, 'read' | 'read-write' | None to remove) in request order."""
    changes = []
    if body.tag == SHARE:
        for action in body:
            href_text = action.findtext(tag(DAV, "href"), "").strip()
            if action.tag == tag(CALSERVER, "set"):
                changes.append((href_text, "read-write" if action.find(tag(CALSERVER, "read-write")) is not None
                                else "read"))
            elif action.tag == tag(CALSERVER, "remove"):
                changes.append((href_text, NO_ACCESS))
    else:
        for sharee in body.iter(tag(DAV, "sharee")):
            access = sharee.find(tag(DAV, "share-access"))
            names = {child.tag for child in access} if access is not None else set()
            mode = ("read-write" if tag(DAV, "read-write") in names else
                    "read" if tag(DAV, "read") in names else NO_ACCESS)
            changes.append((sharee.findtext(tag(DAV, "href"), "").strip(), mode))
    if not changes or not all(href_text for href_text, _ in changes):
        raise BadRequest("a sharing request needs at least one sharee, each with a DAV:href")
    return changes


async def _invite_reply(request: web.Request, home: Target, user: str, body: ET.Element) -> web.Response:
    """Accept (nothing to do: the share is in effect) or decline (leave it) a share offered to `user`."""
    accepted = body.find(tag(CALSERVER, "invite-accepted")) is not None
    if not accepted and body.find(tag(CALSERVER, "invite-declined")) is None:
        raise BadRequest("CS:invite-reply needs CS:invite-accepted or CS:invite-declined")
    host = body.findtext(f"{tag(CALSERVER, 'hosturl')}/{tag(DAV, 'href')}", "").strip()
    try:
        shared = parse_path(urlsplit(host).path.rstrip("/") + "/")
    except NotFound:
        shared = None
    if shared is None or shared.level != COLLECTION or shared.user == user:
        raise BadRequest(f"CS:hosturl {host!r} does not name a collection shared with you")

    def reply(db):
        collection = collection_of(db, shared, user, "read")
        if not accepted:
            revoke_share(db, collection.id, user)
        return collection

    collection = await request.app[DATABASE].write(reply)
    if not accepted:
        return web.Response(status=200)
    mount = Target(COLLECTION, user, collection.kind, mount_name(collection))
    return xml_response(element(tag(CALSERVER, "shared-as"), children=[href(mount.path)]))
