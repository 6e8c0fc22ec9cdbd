"""What a Nextcloud app asks before and right after logging in: status.php, capabilities, config, the user.

hearth presents itself as a Nextcloud 31 server: the desktop client needs 16
or later for Login Flow v2 and Android 20 or later, and Android nags about an
outdated server for 30 and below. Capabilities advertise only what hearth
does: chunked upload ("1.0"), never bulk upload, file locking, end-to-end
encryption or push notifications; sharing as hearth does it (public links with
an optional password and expiry, upload-only drops, user shares; no groups,
email, federation or resharing).
"""
from __future__ import annotations

import asyncio
import hashlib
import json

from aiohttp import web

from services.core.auth import require_user
from services.core.blobs import SIDE_BLOB_STORE
from services.core.http import CONFIG, DATABASE
from services.core.tree import quota_bytes, usage

from ..session import came_over_https
from .ocs import ocs_response

VERSION = (31, 0, 0, 0)
VERSION_STRING = ".".join(map(str, VERSION[:3]))
POLL_INTERVAL = 60  # seconds; the apps' hint, the desktop client keeps its own
QUOTA_UNLIMITED = -3  # what Nextcloud sends for "no quota"

STATUS = {"installed": True, "maintenance": False, "needsDbUpgrade": False,
          "version": ".".join(map(str, VERSION)), "versionstring": VERSION_STRING, "edition": "",
          "productname": "Nextcloud", "extendedSupport": False}

CAPABILITIES = {
    "version": {"major": VERSION[0], "minor": VERSION[1], "micro": VERSION[2], "string": VERSION_STRING,
                "edition": "", "extendedSupport": False},
    "capabilities": {
        "core": {"pollinterval": POLL_INTERVAL, "webdav-root": "remote.php/webdav", "mod-rewrite-working": False},
        "dav": {"chunking": "1.0"},
        "files": {"bigfilechunking": True, "undelete": True, "versioning": True,
                  "blacklisted_files": [".htaccess"]},
        "checksums": {"supportedTypes": ["SHA1"], "preferredUploadType": "SHA1"},
        "files_sharing": {
            "api_enabled": True, "resharing": False, "default_permissions": 31, "group_sharing": False,
            "public": {"enabled": True, "upload": True, "supports_upload_only": True, "multiple": True,
                       "password": {"enforced": False, "askForOptionalPassword": False},
                       "expire_date": {"enabled": False}, "expire_date_internal": {"enabled": False},
                       "expire_date_remote": {"enabled": False}},
            "user": {"send_mail": False}, "federation": {"outgoing": False, "incoming": False}},
        "theming": {"name": "hearth", "url": "", "slogan": "", "color": "#0082c9", "color-text": "#ffffff"},
    },
}
CAPABILITIES_ETAG = '"' + hashlib.sha256(json.dumps(CAPABILITIES, sort_keys=True).encode()).hexdigest()[:32] + '"'


async def status(request: web.Request) -> web.Response:
    """GET /status.php: public, never 401, never a redirect (the desktop would move the account)."""
    response = web.json_response(STATUS)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def no_content(request: web.Request) -> web.Response:
    """GET /index.php/204: Android's captive-portal check; anything but an empty 204 defers its uploads."""
    return web.Response(status=204)


async def capabilities(request: web.Request) -> web.Response:
    """GET /ocs/v{1,2}.php/cloud/capabilities: public (the desktop asks before it has credentials);
    Android revalidates with If-None-Match."""
    if request.headers.get("If-None-Match") == CAPABILITIES_ETAG:
        return web.Response(status=304, headers={"ETag": CAPABILITIES_ETAG})
    response = ocs_response(request, CAPABILITIES)
    response.headers["ETag"] = CAPABILITIES_ETAG
    return response


async def server_config(request: web.Request) -> web.Response:
    """GET /ocs/v1.php/config: the server's self-description some desktop versions read."""
    await require_user(request)
    host = request.headers.get("X-Forwarded-Host") or request.host
    return ocs_response(request, {"version": "1.7", "website": "Nextcloud", "host": host,
                                  "contact": "", "ssl": "true" if came_over_https(request) else "false"})


async def cloud_user(request: web.Request) -> web.Response:
    """GET /ocs/v{1,2}.php/cloud/user: the user id every DAV path uses, and the quota against
    hearth's one rule ([sync] quota_mb; versions and trash not counted)."""
    identity = await require_user(request)
    used = await request.app[DATABASE].read(lambda db: usage(db, identity.user))
    quota = quota_bytes(request.app[CONFIG])
    free = await asyncio.to_thread(request.app[SIDE_BLOB_STORE].free_bytes)
    if quota is None and free is None:  # an object store: no disk to fill, as Nextcloud says of one
        space = {"free": QUOTA_UNLIMITED, "used": used, "total": used, "relative": 0.0, "quota": QUOTA_UNLIMITED}
    elif quota is None:  # what is left is the blob store's disk, as Nextcloud reports it
        space = {"free": free, "used": used, "total": used + free,
                 "relative": round(100 * used / (used + free), 2) if used + free else 0.0, "quota": QUOTA_UNLIMITED}
    else:
        space = {"free": max(0, quota - used), "used": used, "total": quota,
                 "relative": round(100 * used / quota, 2), "quota": quota}
    return ocs_response(request, {
        "id": identity.user, "enabled": True, "display-name": identity.user, "email": None,
        "phone": "", "address": "", "website": "", "twitter": "", "groups": [], "language": "en", "locale": "",
        "quota": space, "backend": "Database"})
