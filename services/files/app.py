"""The WebDAV file daemon's application: `create_app(config)`, everything under /files/.

EXTENSIONS lists what else the daemon serves; each is a function taking the
application and adding its routes. They are added before the WebDAV
catch-all, so their more specific routes win.
"""
from __future__ import annotations

from typing import Callable

from aiohttp import web

from services.core.auth import setup_auth
from services.core.config import Config
from services.core.blobs import blob_store_context
from services.core.http import create_base_app

from . import chunked, links, previews, trashbin, versions, webdav
from .errors import dav_error_bodies

EXTENSIONS: list[Callable[[web.Application], None]] = [links.add_routes, chunked.add_routes, trashbin.add_routes,
                                                       versions.add_routes, previews.add_routes]


def create_app(config: Config) -> web.Application:
    app = create_base_app(config, "files", middlewares=(dav_error_bodies,))
    setup_auth(app)
    app.cleanup_ctx.append(blob_store_context(config))
    for extend in EXTENSIONS:
        extend(app)
    webdav.add_routes(app)
    return app

