"""The CalDAV/CardDAV daemon's application: `create_app(config)`, everything under /dav/."""
from __future__ import annotations

from aiohttp import web

from services.core.auth import setup_auth
from services.core.config import Config
from services.core.http import create_base_app
from services.core.openapi import OPENAPI, build_spec
from services.core.routing import guarded

from .api import revisions, shares
from .http.access import ENSURED
from .http.dispatch import add_routes, dav_errors
from .instancerefresh import instances_context
from .retention import retention_context
from .scheduling.sender import imip_context

# The JSON API next to the DAV protocol; /dav/api/v1/openapi.json describes exactly this list.
API_ROUTES = (*shares.ROUTES, *revisions.ROUTES)
DESCRIPTION = ("Calendars and address books of a hearth home server, beyond what DAV clients do: sharing "
               "between users, restoring replaced or deleted items. Authenticate with HTTP Basic (account or app "
               "password) or a bearer app password.")


def create_app(config: Config) -> web.Application:
    app = create_base_app(config, "dav", middlewares=(dav_errors,))
    setup_auth(app)
    app[ENSURED] = set()
    app.cleanup_ctx.append(retention_context(config))  # after the database's: stopped before it closes
    app.cleanup_ctx.append(imip_context)  # the iMIP sender, likewise inside the database's lifetime
    app.cleanup_ctx.append(instances_context(config))  # stored event instances kept for the years around now
    for route in API_ROUTES:  # before the DAV catch-all under /dav/
        app.router.add_route(route.method, route.path, guarded(route))
    app[OPENAPI] = build_spec(API_ROUTES, title="hearth DAV API", description=DESCRIPTION)
    add_routes(app)
    return app
