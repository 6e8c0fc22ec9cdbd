"""/api/v1/me/devices: an app password for a new device, with a QR code a phone can scan.

The QR code holds a `caldav://` (or `caldavs://` over https) URL with the user
name and the new app password in it, pointing at the DAV root: DAVx5 opens such
a URL in its login screen with every field filled in. The password is shown
once, in this response, like POST /api/v1/me/app-passwords.
"""
from __future__ import annotations

import io
from urllib.parse import quote

import segno
from aiohttp import web
from pydantic import Field

from services.core import accounts
from services.core.auth import require_user
from services.core.http import DATABASE, read_json
from services.core.routing import Route, respond

from .app_passwords import CreatedAppPassword, NewAppPassword
from .session import came_over_https


class NewDevice(CreatedAppPassword):
    user: str
    server: str = Field(description="the server's address as the request reached it, e.g. https://home.example.org")
    setup_url: str = Field(description="caldav(s)://USER:PASSWORD@HOST/dav/ — what the QR code holds")
    qr_svg: str = Field(description="the setup URL as a QR code, an SVG document")


def server_address(request: web.Request) -> str:
    """scheme://host[:port] as the browser sees this server (through the front end's forwarded headers)."""
    host = request.headers.get("X-Forwarded-Host") or request.host
    return f"{'https' if came_over_https(request) else 'http'}://{host}"


def setup_url(server: str, user: str, password: str) -> str:
    scheme, _, host = server.partition("://")
    dav_scheme = "caldavs" if scheme == "https" else "caldav"
    return f"{dav_scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host}/dav/"


def qr_svg(text: str) -> str:
    """A standalone SVG document of the QR code, scaling with its container (no fixed size)."""
    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="svg", scale=4, border=2, xmldecl=False, omitsize=True,
                                     title="QR code for setting up a device")
    return buffer.getvalue().decode("utf-8")


async def create_device(request: web.Request) -> web.Response:
    identity = await require_user(request)
    body = await read_json(request, NewAppPassword)
    row, secret = await request.app[DATABASE].write(
        lambda db: accounts.create_app_password(db, identity.user, body.label))
    server = server_address(request)
    url = setup_url(server, identity.user, secret)
    return respond(NewDevice(**{k: v for k, v in row.items() if k != "user"}, password=secret, user=identity.user,
                             server=server, setup_url=url, qr_svg=qr_svg(url)), status=201)


ROUTES = (
    Route("POST", "/api/v1/me/devices", create_device,
          "Create an app password for a device, with a QR code of its setup URL (shown once)", tag="me",
          body=NewAppPassword, response=NewDevice, status=201),
)
