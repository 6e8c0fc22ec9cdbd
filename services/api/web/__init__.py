"""The web UI: server-rendered page shells, plain ES modules and CSS, no build step.

Pages are served by the API daemon at the root of the one origin (the front end
sends every path no other daemon claims here). Each page is a small HTML shell
from templates/ with the session's CSRF token in a meta tag; its module in
static/ fills it from the JSON APIs (/api/v1, /dav/api/v1, /sync/v1) and the
WebDAV trees (/dav/, /files/), always with the session cookie and the token.
"""
from __future__ import annotations

from aiohttp import web

from .pages import STATIC_DIR, add_page_routes


def add_web_routes(app: web.Application) -> None:
    """Register the pages and /static/ on the API daemon's application."""
    add_page_routes(app)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
