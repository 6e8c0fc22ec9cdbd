"""Nextcloud's Login Flows: how an app gets an app password without ever seeing the account password.

v2 (desktop, iOS, Android's "log in" button): the app POSTs /index.php/login/v2
and opens the `login` URL in a browser, where its user logs in to hearth's web
UI and approves the device by name; meanwhile the app polls with its token and
gets {server, loginName, appPassword} once, after approval (404 before and
after). v1 (Android's web view): /index.php/login/flow shows the same approval
page, and approving sends the web view to `nc://login/server:…&user:…&password:…`,
which the app intercepts.

Approve and deny are JSON requests from the page's module, carrying the
session's CSRF token like every other change the web UI makes. The app
password is labelled with the device the User-Agent names (device_names.py), so it
is listed and revoked with the others (`hearth token`, the Devices page).
"""
from __future__ import annotations

from urllib.parse import quote_plus

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from services.core import accounts
from services.core.auth import AUTHENTICATOR, require_user
from services.core.errors import BadRequest, Forbidden
from services.core.http import DATABASE, read_json

from ..devices import server_address
from ..web.pages import Page, html_page, render, to_login
from . import flows
from .device_names import device_label
from .ocs import ocs_response

CONNECT = Page("/index.php/login/flow", "Connect a device", "connect", in_nav=False)
V2_LOGIN_PREFIX = "/index.php/login/v2/flow/"


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool


async def start_v2(request: web.Request) -> web.Response:
    """POST /index.php/login/v2: a new flow, named after the app's User-Agent."""
    device = device_label(request.headers.get("User-Agent"))
    poll, login = await request.app[DATABASE].write(lambda db: flows.start_flow(db, device))
    server = server_address(request)
    return web.json_response({"poll": {"token": poll, "endpoint": f"{server}/index.php/login/v2/poll"},
                              "login": f"{server}{V2_LOGIN_PREFIX}{login}"})


async def poll_v2(request: web.Request) -> web.Response:
    """POST /index.php/login/v2/poll: the credentials once the flow is approved, 404 before and after.

    The token comes in the form body (desktop, Android) or the query string (iOS)."""
    form = await request.post() if request.content_type == "application/x-www-form-urlencoded" else {}
    token = form.get("token") or request.query.get("token")
    if not isinstance(token, str) or not token:
        raise BadRequest("token is missing: send it in the form body or the query string")
    claimed = await request.app[DATABASE].write(lambda db: flows.claim(db, token))
    if claimed is None:
        return web.json_response([], status=404)
    user, password = claimed
    return web.json_response({"server": server_address(request), "loginName": user, "appPassword": password})


async def show_v2(request: web.Request) -> web.Response:
    """GET /index.php/login/v2/flow/TOKEN: the approval page, after the web UI's login."""
    identity = await request.app[AUTHENTICATOR].session_identity(request)
    if identity is None:
        raise to_login(request)
    token = request.match_info["token"]
    flow = await request.app[DATABASE].read(lambda db: flows.pending_flow(db, token))
    if flow is None:
        gone = Page(request.path, "This sign-in request has ended", "connect_gone", in_nav=False)
        return html_page(render(gone, identity), 404)
    return html_page(render(CONNECT, identity, data={"device": flow["device"], "flow": "v2"}))


async def decide_v2(request: web.Request) -> web.Response:
    """POST /index.php/login/v2/flow/TOKEN {"approve": bool}, from the approval page."""
    identity = await require_user(request)
    body = await read_json(request, Decision)
    token = request.match_info["token"]
    flow = await request.app[DATABASE].write(lambda db: flows.decide(db, token, identity.user, body.approve))
    if flow is None:
        raise web.HTTPNotFound(text="this sign-in request has ended: start again from the app")
    return web.json_response({"approved": body.approve, "device": flow["device"]})


async def show_v1(request: web.Request) -> web.Response:
    """GET /index.php/login/flow: the approval page for the web view's own app, after the login."""
    identity = await request.app[AUTHENTICATOR].session_identity(request)
    if identity is None:
        raise to_login(request)
    device = device_label(request.headers.get("User-Agent"))
    return html_page(render(CONNECT, identity, data={"device": device, "flow": "v1"}))


async def decide_v1(request: web.Request) -> web.Response:
    """POST /index.php/login/flow {"approve": bool}: on approval, the nc:// address the app intercepts."""
    identity = await require_user(request)
    body = await read_json(request, Decision)
    if not body.approve:
        return web.json_response({"approved": False})
    device = device_label(request.headers.get("User-Agent"))
    _, password = await request.app[DATABASE].write(
        lambda db: accounts.create_app_password(db, identity.user, device))
    return web.json_response({"approved": True, "device": device,
                              "redirect": nc_login_url(server_address(request), identity.user, password)})


def nc_login_url(server: str, user: str, password: str) -> str:
    """`nc://login/server:…&user:…&password:…`: the server as it is, user and password form-encoded
    (space as +), which the Android app's URLDecoder reverses."""
    return f"nc://login/server:{server}&user:{quote_plus(user, safe='')}&password:{quote_plus(password, safe='')}"


async def forget_app_password(request: web.Request) -> web.Response:
    """DELETE /ocs/v2.php/core/apppassword: the app logs out and revokes the app password it signed in with."""
    identity = await require_user(request)
    if identity.via != "app-password" or identity.app_password_id is None:
        raise Forbidden("this request was made with the account password: there is no app password to revoke")
    await request.app[DATABASE].write(
        lambda db: accounts.revoke_app_password(db, identity.user, identity.app_password_id))
    return ocs_response(request, [])


async def exchange_password(request: web.Request) -> web.Response:
    """GET /ocs/v2.php/core/getapppassword: an app that logged in with the account password trades it for an
    app password of its own (the iOS app does), named after its User-Agent like the flows' ones."""
    identity = await require_user(request)
    if identity.via != "password":
        raise Forbidden("this request was made with an app password already: keep using it")
    device = device_label(request.headers.get("User-Agent"))
    _, password = await request.app[DATABASE].write(
        lambda db: accounts.create_app_password(db, identity.user, device))
    return ocs_response(request, {"apppassword": password})
