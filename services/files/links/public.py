"""The public side of share links, under /s/<token>: pages, downloads, uploads, the password form.

Nobody here is logged in; the token is the whole credential, so every handler
starts from `open_link` (404 unknown, 410 revoked or expired, checked on each
request, so a revocation takes effect at once) and, for a password-protected
link, the unlock cookie. Paths from the URL are confined by `Link.inside`.
"""
from __future__ import annotations

import logging

from aiohttp import web

from services.core.errors import Forbidden, HTTPError, NotFound
from services.core.http import BLOB_STORE, CONFIG, DATABASE
from services.core.tree import quota_bytes
from services.core.user_content import attachment

from . import pages
from .download import send_file
from services.core.share_links import Link, count_download, open_link
from .tree_view import Item, children, live_entry
from .unlock import is_unlocked, remember, try_password
from .upload import receive

log = logging.getLogger("files")

MAX_PASSWORD_FORM_BYTES = 4096


def html(body: str, status: int = 200, headers: dict | None = None) -> web.Response:
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers.update(pages.SECURITY_HEADERS)
    response.headers.update(headers or {})
    return response


@web.middleware
async def html_errors(request: web.Request, handler):
    """Errors on public pages are plain HTML pages, not the JSON the API answers with."""
    try:
        return await handler(request)
    except HTTPError as error:
        log.info("%s %s -> %d: %s", request.method, request.path, error.status, error.reason)
        return html(pages.error_page(error.status, error.reason), error.status, error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        keep = {name: error.headers[name] for name in ("Allow",) if name in error.headers}
        return html(pages.error_page(error.status, error.reason), error.status, keep)


async def _link(request: web.Request) -> Link:
    token = request.match_info["token"]
    return await request.config_dict[DATABASE].read(lambda db: open_link(db, token))


async def _unlocked_link(request: web.Request) -> tuple[Link, web.Response | None]:
    """The link, and the password page to answer with instead when it is still locked."""
    link = await _link(request)
    if is_unlocked(request, link):
        return link, None
    return link, html(pages.password_page(link), 403)


async def _item(request: web.Request, link: Link, relative: str) -> Item:
    path = link.inside(relative)
    item = await request.config_dict[DATABASE].read(lambda db: live_entry(db, link.folder_id, path)
                                                    if path else None)
    if path and item is None:
        raise NotFound("no such file in this share")
    return item


async def _listing(request: web.Request, link: Link, relative: str, notice: str = "") -> web.Response:
    if link.mode == "upload-only":
        return html(pages.drop_page(link, notice))
    item = await _item(request, link, relative)
    if item is not None and item.kind != "dir":
        raise NotFound("no such folder in this share")
    found = await request.config_dict[DATABASE].read(
        lambda db: children(db, link.folder_id, item.path if item else ""))
    return html(pages.folder_page(link, relative, found, notice))


async def show(request: web.Request) -> web.Response:
    """The link's page: the file with a download button, the folder's contents, or the drop form."""
    link, locked = await _unlocked_link(request)
    if locked:
        return locked
    if link.is_dir:
        return await _listing(request, link, "")
    item = await _item(request, link, "")
    if item.kind != "file":
        raise NotFound("the shared file is gone")
    return html(pages.file_page(link, item))


async def browse(request: web.Request) -> web.Response:
    link, locked = await _unlocked_link(request)
    if locked:
        return locked
    if not link.is_dir:
        raise NotFound("this link shares a single file")
    if link.mode == "upload-only":
        raise Forbidden("this link only accepts uploads")
    return await _listing(request, link, request.match_info["path"])


async def download(request: web.Request) -> web.StreamResponse:
    """The shared file (GET /s/<token>/download) or a file inside the shared folder (.../download/<path>)."""
    link, locked = await _unlocked_link(request)
    if locked:
        return locked
    relative = request.match_info.get("path", "")
    if link.mode == "upload-only":
        raise Forbidden("this link only accepts uploads")
    if link.is_dir != bool(relative):
        raise NotFound("no such file in this share")
    item = await _item(request, link, relative)
    if item.kind != "file":
        raise NotFound("no such file in this share")

    async def count() -> None:
        await request.config_dict[DATABASE].write(lambda db: count_download(db, link.id))

    return await send_file(request, item, request.config_dict[BLOB_STORE], disposition=attachment(item.name), on_download=count)


async def upload(request: web.Request) -> web.Response:
    """Files from the upload form, added to the shared folder (or a folder inside it) as new files."""
    link, locked = await _unlocked_link(request)
    if locked:
        return locked
    if not link.is_dir or link.mode == "read":
        raise Forbidden("this link does not accept uploads")
    relative = request.match_info.get("path", "")
    if relative and link.mode == "upload-only":
        raise Forbidden("this link only accepts uploads into its own folder")
    item = await _item(request, link, relative)
    if item is not None and item.kind != "dir":
        raise NotFound("no such folder in this share")
    stored = await receive(request, link, item.path if item else "", request.config_dict[BLOB_STORE],
                           quota=quota_bytes(request.config_dict[CONFIG]))
    log.info("share link %d: %d file(s) uploaded", link.id, len(stored))
    # The uploader sees the names they sent, not the ones a clash gave: those would tell an
    # upload-only visitor which names already exist.
    notice = pages.uploaded_notice([file.name for file in stored])
    response = await _listing(request, link, relative, notice)
    response.set_status(201)
    return response


async def unlock(request: web.Request) -> web.Response:
    """The password form: the link's page and a cookie when right, the form again (403) when wrong."""
    link = await _link(request)
    back = web.Response(status=303, headers={"Location": f"/s/{link.token}", **pages.SECURITY_HEADERS})
    if not link.has_password:
        return back
    if request.content_length is not None and request.content_length > MAX_PASSWORD_FORM_BYTES:
        raise Forbidden("password form too large")
    form = await request.post()
    password = form.get("password")
    if not isinstance(password, str) or not await try_password(request, link, password):
        return html(pages.password_page(link, wrong=True), 403)
    remember(back, link, secure=request.secure or request.headers.get("X-Forwarded-Proto") == "https")
    return back


def public_app() -> web.Application:
    """The sub-application mounted at /s: its own HTML error pages; the parent's database, config and blob store."""
    app = web.Application(middlewares=[html_errors])
    app.router.add_get("/{token}", show)
    app.router.add_get("/{token}/", show)
    app.router.add_get("/{token}/download", download)
    app.router.add_get("/{token}/download/{path:.+}", download)
    app.router.add_get("/{token}/browse/{path:.+}", browse)
    app.router.add_post("/{token}/upload", upload)
    app.router.add_post("/{token}/upload/{path:.+}", upload)
    app.router.add_post("/{token}/unlock", unlock)
    return app
