"""The API daemon's application: `create_app(config)`."""
from __future__ import annotations

from aiohttp import web

from services.core.auth import setup_auth
from services.core.blobs import SIDE_BLOB_STORE, blob_store_context
from services.core.config import Config
from services.core.http import create_base_app

from . import (admin_services, app_passwords, data_export, devices, email_addresses, me, openapi, session, usage,
               users)
from .nextcloud import add_nextcloud_routes
from .web import add_web_routes
from services.core.routing import guarded

# Every route the daemon serves; the OpenAPI document describes exactly this list.
ROUTES = (*me.ROUTES, *app_passwords.ROUTES, *email_addresses.ROUTES, *devices.ROUTES, *session.ROUTES,
          *users.ROUTES, *admin_services.ROUTES, *usage.ROUTES, *data_export.ROUTES, *openapi.ROUTES)


def create_app(config: Config) -> web.Application:
    """The API daemon: accounts and app passwords over JSON, plus its OpenAPI document."""
    app = create_base_app(config, "api")
    setup_auth(app)
    # Exports and the Nextcloud quota read the blob store; its outage must not fail the API's /healthz
    # (logins and app passwords do not need it), so it is kept under the API's own key.
    app.cleanup_ctx.append(blob_store_context(config, SIDE_BLOB_STORE))
    for route in ROUTES:
        app.router.add_route(route.method, route.path, guarded(route))
    app[openapi.OPENAPI] = openapi.build_spec(ROUTES)
    add_web_routes(app)
    add_nextcloud_routes(app)
    return app
