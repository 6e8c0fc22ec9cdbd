"""Storage used against the quota: /api/v1/me/usage for everyone, /api/v1/admin/usage for admins.

Usage is what the sync daemon checks the quota against (services.core.tree
usage(): the current files of the folders a user owns, versions and trash not
counted). The quota is one number for every user, [sync] quota_mb; it is
shown here, not set: change it in hearth.toml.
"""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.auth import require_user
from services.core.http import CONFIG, DATABASE
from services.core.routing import Route, respond
from services.core.tree import quota_bytes, usage


class Usage(BaseModel):
    user: str
    used_bytes: int = Field(description="current files in the folders the user owns (not versions or trash)")
    quota_bytes: int | None = Field(description="[sync] quota_mb in bytes; null: no quota")
    percent: float | None = Field(description="used_bytes of quota_bytes, in percent; null: no quota")

    @classmethod
    def of(cls, user: str, used: int, quota: int | None) -> "Usage":
        percent = None if quota is None else round(100 * used / quota, 1)
        return cls(user=user, used_bytes=used, quota_bytes=quota, percent=percent)


async def my_usage(request: web.Request) -> web.Response:
    identity = await require_user(request)
    used = await request.app[DATABASE].read(lambda db: usage(db, identity.user))
    return respond(Usage.of(identity.user, used, quota_bytes(request.app[CONFIG])))


def _everyone(db) -> list[tuple[str, int]]:
    return [(name, usage(db, name)) for (name,) in db.execute("SELECT name FROM users ORDER BY name")]


async def all_usage(request: web.Request) -> web.Response:
    quota = quota_bytes(request.app[CONFIG])
    rows = await request.app[DATABASE].read(_everyone)
    return respond([Usage.of(name, used, quota) for name, used in rows])


ROUTES = (
    Route("GET", "/api/v1/me/usage", my_usage, "Your storage use and the quota it counts against",
          tag="me", response=Usage),
    Route("GET", "/api/v1/admin/usage", all_usage, "Every user's storage use and the quota (read-only: "
          "[sync] quota_mb in hearth.toml sets it)", tag="admin", access="admin", response=Usage, many=True),
)
