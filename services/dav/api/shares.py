"""Sharing calendars and address books: GET /dav/api/v1/shares, PUT/DELETE …/shares/{home}/{name}/{user}.

`home` is the URL segment of the collection's home, `calendars` or
`addressbooks`; `name` the collection's name in the owner's (the caller's) home.
"""
from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.auth import require_user
from services.core.errors import NotFound
from services.core.http import DATABASE, read_json
from services.core.openapi import get_openapi
from services.core.routing import Route, respond

from ..http.paths import HOME_OF, HOMES, home_path
from ..store.sharing import Grant, grant, grants, revoke

PREFIX = "/dav/api/v1"
Mode = Literal["read", "read-write"]


class ShareOut(BaseModel):
    home: Literal["calendars", "addressbooks"]
    owner: str
    collection: str = Field(description="the collection's name in its owner's home")
    user: str = Field(description="who it is shared with")
    mode: Mode
    href: str = Field(description="where the grantee's clients find it: a collection in their own home")

    @classmethod
    def of(cls, share: Grant) -> "ShareOut":
        return cls(home=HOME_OF[share.kind], owner=share.owner, collection=share.collection, user=share.grantee,
                   mode=share.mode, href=home_path(share.grantee, share.kind) + share.mount + "/")


class ShareIn(BaseModel):
    mode: Mode


PATH_PARAMS = {
    "home": {"type": "string", "enum": list(HOMES), "description": "calendars or addressbooks"},
    "name": {"type": "string", "description": "the collection's name in your home"},
    "user": {"type": "string", "description": "the user to share with"},
}


async def get_shares(request: web.Request) -> web.Response:
    identity = await require_user(request)
    found = await request.app[DATABASE].read(lambda db: grants(db, identity.user))
    return respond([ShareOut.of(share) for share in found])


async def put_share(request: web.Request) -> web.Response:
    identity = await require_user(request)
    kind, name, grantee = _params(request)
    body = await read_json(request, ShareIn)
    share = await request.app[DATABASE].write(lambda db: grant(db, identity.user, kind, name, grantee, body.mode))
    return respond(ShareOut.of(share))


async def delete_share(request: web.Request) -> web.Response:
    identity = await require_user(request)
    kind, name, grantee = _params(request)
    await request.app[DATABASE].write(lambda db: revoke(db, identity.user, kind, name, grantee))
    return web.Response(status=204)


def _params(request: web.Request) -> tuple[str, str, str]:
    home = request.match_info["home"]
    if home not in HOMES:
        raise NotFound(f"no home {home!r}: calendars or addressbooks")
    return HOMES[home], request.match_info["name"], request.match_info["user"]


SHARE = f"{PREFIX}/shares/{{home}}/{{name}}/{{user}}"
ROUTES = (
    Route("GET", f"{PREFIX}/shares", get_shares, "Shares you give and shares given to you", tag="shares",
          response=ShareOut, many=True),
    Route("PUT", SHARE, put_share, "Share one of your calendars or address books with a user, read or read-write "
          "(or change the mode); it appears in their home at once", tag="shares", body=ShareIn,
          response=ShareOut, errors=(404,), path_params=PATH_PARAMS),
    Route("DELETE", SHARE, delete_share, "Stop sharing; it leaves the user's home at once", tag="shares",
          status=204, errors=(404,), path_params=PATH_PARAMS),
    Route("GET", f"{PREFIX}/openapi.json", get_openapi, "This OpenAPI document", tag="meta", access="public"),
)
