"""The Nextcloud apps' way in: discovery (status.php, OCS capabilities, config, the user), login flows
and the OCS share API.

The routes sit where the apps look for them, outside /api/; the front end sends
/status.php, /index.php/, /ocs/ and /remote.php/dav/avatars/ here (services/front/routes.py).
The files themselves (/remote.php/…) and their thumbnails (/index.php/core/preview…) are the
files daemon's.
"""
from __future__ import annotations

from aiohttp import web

from . import absent_apps, avatars, discovery, login_flow, shares

ROUTES = (
    ("GET", "/status.php", discovery.status),
    ("GET", "/index.php/204", discovery.no_content),
    ("GET", "/ocs/v1.php/config", discovery.server_config),
    ("GET", "/index.php/avatar/{user}/{size}", avatars.avatar),
    ("GET", "/remote.php/dav/avatars/{user}/{size}.png", avatars.avatar),
    ("DELETE", "/ocs/v2.php/core/apppassword", login_flow.forget_app_password),
    ("GET", "/ocs/v2.php/core/getapppassword", login_flow.exchange_password),
    *(("GET", path, absent_apps.nothing_here) for path in absent_apps.EMPTY),
    ("POST", "/index.php/login/v2", login_flow.start_v2),
    ("POST", "/index.php/login/v2/poll", login_flow.poll_v2),
    ("GET", login_flow.V2_LOGIN_PREFIX + "{token}", login_flow.show_v2),
    ("POST", login_flow.V2_LOGIN_PREFIX + "{token}", login_flow.decide_v2),
    ("GET", login_flow.CONNECT.path, login_flow.show_v1),
    ("POST", login_flow.CONNECT.path, login_flow.decide_v1),
    *((method, f"/ocs/v{version}.php/cloud/{name}", handler)
      for version in (1, 2) for method, name, handler in (("GET", "capabilities", discovery.capabilities),
                                                          ("GET", "user", discovery.cloud_user))),
    *shares.ROUTES,
)


def add_nextcloud_routes(app: web.Application) -> None:
    """Register the discovery, OCS and login-flow routes on the API daemon's application."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
