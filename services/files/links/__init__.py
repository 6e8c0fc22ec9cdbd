"""Public share links: a URL under /s/<token> that opens a file or folder of a user's tree without an account.

`add_routes(app)` mounts both sides on the files daemon's application: the
public pages (a sub-application at /s, HTML errors) and the owner's JSON API
(`ROUTES`, under /files/api/v1/links; include them in the daemon's OpenAPI list).
"""
from __future__ import annotations

from aiohttp import web

from services.core.routing import guarded

from .api import ROUTES
from .public import public_app

__all__ = ["ROUTES", "add_routes"]


def add_routes(app: web.Application) -> None:
    """Mount /s/… and the links API on an app built by create_base_app (with setup_auth)."""
    for route in ROUTES:
        app.router.add_route(route.method, route.path, guarded(route))
    app.add_subapp("/s", public_app())
