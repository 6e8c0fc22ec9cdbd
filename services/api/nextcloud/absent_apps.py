"""Nextcloud apps hearth does not have, answered as present but empty.

The iOS app calls these while it sets up an account and gives up on an error
(direct editing, notifications, the dashboard, activity, the app menu, user
status); an empty OCS answer tells it there is nothing to show.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from services.core.auth import require_user

from .ocs import ocs_response

EMPTY: dict[str, Any] = {
    "/ocs/v2.php/apps/files/api/v1/directEditing": {"editors": {}, "creators": {}},
    "/ocs/v2.php/apps/notifications/api/v2/notifications": [],
    "/ocs/v2.php/apps/dashboard/api/v1/widgets": [],
    "/ocs/v2.php/apps/activity/api/v2/activity/all": [],
    "/ocs/v2.php/core/navigation/apps": [],
    "/ocs/v2.php/apps/user_status/api/v1/user_status": {},
}


async def nothing_here(request: web.Request) -> web.Response:
    await require_user(request)
    return ocs_response(request, EMPTY[request.path])
