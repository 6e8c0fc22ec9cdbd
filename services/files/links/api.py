"""The owner's JSON API for share links: GET/POST /files/api/v1/links, DELETE /files/api/v1/links/{id}."""
from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.accounts import now_iso
from services.core.auth import AUTHENTICATOR, require_user
from services.core.http import DATABASE, read_json
from services.core.routing import Route, int_param, respond

from services.core.share_links import MAX_LABEL_LENGTH, Link, create_link, list_links, parse_expiry, revoke_link

PREFIX = "/files/api/v1"
Mode = Literal["read", "read-write", "upload-only"]


class LinkIn(BaseModel):
    folder: int = Field(description="the id of a folder you own (GET /sync/v1/folders lists them)")
    path: str = Field("", max_length=4096, description="a file or directory in it; empty: the whole folder")
    mode: Mode = Field("read", description="read: view and download; read-write: also upload new files; "
                                           "upload-only: a file drop (upload, never list or download)")
    password: str | None = Field(None, max_length=1024, description="asked before anything is shown")
    expires: str | None = Field(None, max_length=40, description="7d, 12h, 30m, 2w, a date (valid through "
                                                                 "that day, UTC) or an ISO date and time")
    label: str = Field("", max_length=MAX_LABEL_LENGTH, description="shown on the public page")


class LinkOut(BaseModel):
    id: int
    url: str | None = Field(description="the public address, relative to the server's origin: /s/<token>; "
                                        "only in the answer that created the link (the server keeps no copy)")
    shown_url: str = Field(description="the start of the address, /s/Zq3v…, to tell links apart; it opens nothing")
    folder: int
    path: str
    is_dir: bool
    mode: Mode
    label: str
    has_password: bool
    expires_at: str | None
    expired: bool
    downloads: int
    created_at: str

    @classmethod
    def of(cls, link: Link, now: str) -> "LinkOut":
        return cls(id=link.id, url=f"/s/{link.token}" if link.token else None, shown_url=link.shown_url,
                   folder=link.folder_id, path=link.path,
                   is_dir=link.is_dir, mode=link.mode, label=link.label, has_password=link.has_password,
                   expires_at=link.expires_at, expired=link.expires_at is not None and link.expires_at <= now,
                   downloads=link.downloads, created_at=link.created_at)


async def get_links(request: web.Request) -> web.Response:
    identity = await require_user(request)
    found = await request.config_dict[DATABASE].read(lambda db: list_links(db, identity.user))
    now = now_iso()
    return respond([LinkOut.of(link, now) for link in found])


async def post_link(request: web.Request) -> web.Response:
    identity = await require_user(request)
    body = await read_json(request, LinkIn)
    expires_at = parse_expiry(body.expires)
    password_hash = None
    if body.password is not None:  # argon2 before the write transaction, never inside it
        password_hash = await request.config_dict[AUTHENTICATOR].hash_password(body.password)
    link = await request.config_dict[DATABASE].write(lambda db: create_link(
        db, identity.user, body.folder, body.path, mode=body.mode, password_hash=password_hash,
        expires_at=expires_at, label=body.label))
    return respond(LinkOut.of(link, now_iso()), status=201)


async def delete_link(request: web.Request) -> web.Response:
    identity = await require_user(request)
    link_id = int_param(request, "id")
    await request.config_dict[DATABASE].write(lambda db: revoke_link(db, identity.user, link_id))
    return web.Response(status=204)


ROUTES = (
    Route("GET", f"{PREFIX}/links", get_links, "Your share links that are not revoked, oldest first",
          tag="links", response=LinkOut, many=True),
    Route("POST", f"{PREFIX}/links", post_link,
          "Create a public link to a file or folder of yours, with an optional password and expiry",
          tag="links", body=LinkIn, response=LinkOut, status=201, errors=(404,)),
    Route("DELETE", f"{PREFIX}/links/{{id}}", delete_link,
          "Revoke a link; its page answers 410 Gone from now on", tag="links", status=204, errors=(404,),
          path_params={"id": {"type": "integer", "description": "the link's id"}}),
)
