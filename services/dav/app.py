"""The CalDAV/CardDAV daemon's application: `create_app(config)`, everything under /dav/."""
from __future__ import annotations

from aiohttp import web

from services.core.auth import setup_auth
from services.core.config import Config
from services.core.http import create_base_app

from .http.access import ENSURED
from .http.dispatch import add_routes, dav_errors


def create_app(config: Config) -> web.Application:
    app = create_base_app(config, "dav", middlewares=(dav_errors,))
    setup_auth(app)
    app[ENSURED] = set()
    add_routes(app)
    return app
