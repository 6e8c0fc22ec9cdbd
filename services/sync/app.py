"""The sync daemon's application: `create_app(config)`, everything under /sync/v1."""
from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from services.core.auth import setup_auth
from services.core.blobs import blob_store_context
from services.core.config import Config
from services.core.db import db_path
from services.core.http import CONFIG, create_base_app
from services.core.openapi import OPENAPI, build_spec
from services.core.routing import guarded
from services.core.tree.recent_chunks import RecentChunks

from .server import (chunk_batch, chunks, commits, folder_lifecycle, folders, journal, mass_deletions, meta,
                     storage)
from .server.common import FEED, RECENT, ChangeFeed
from .server.retention import retention_context

# Every route the daemon serves; its OpenAPI document (/sync/v1/openapi.json) describes exactly this list.
ROUTES = (*folders.ROUTES, *folder_lifecycle.ROUTES, *chunks.ROUTES, *chunk_batch.ROUTES, *journal.ROUTES, *commits.ROUTES,
          *storage.ROUTES, *mass_deletions.ROUTES, *meta.ROUTES)

DESCRIPTION = ("File sync of a hearth home server: folders, content-addressed chunks (BLAKE3, "
               "application/octet-stream bodies), a per-folder journal and its change feed (long poll "
               "with `wait`). Authenticate with HTTP Basic (account password or app password) or with "
               "an app password as a bearer token.")


def create_app(config: Config) -> web.Application:
    app = create_base_app(config, "sync")
    setup_auth(app)
    app.cleanup_ctx.append(blob_store_context(config))
    app.cleanup_ctx.append(_feed_context)
    app.cleanup_ctx.append(retention_context(config))  # after the store: stopped before it goes
    app.on_shutdown.append(_wake_long_polls)  # SIGTERM must not wait out a 60 s long poll
    for route in ROUTES:
        app.router.add_route(route.method, route.path, guarded(route))
    app[RECENT] = RecentChunks()
    app[OPENAPI] = build_spec(ROUTES, title="hearth sync API", description=DESCRIPTION)
    return app


async def _wake_long_polls(app: web.Application) -> None:
    if FEED in app:
        await app[FEED].close()


async def _feed_context(app: web.Application) -> AsyncIterator[None]:
    app[FEED] = ChangeFeed(db_path(app[CONFIG].data_dir))  # woken by other processes' writes too
    yield
    await app[FEED].close()
