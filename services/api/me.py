"""/api/v1/me: who am I, as the server sees the request's credentials."""
from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel, Field

from services.core import accounts
from services.core.auth import require_user
from services.core.errors import Unauthorized
from services.core.http import DATABASE

from services.core.routing import Route, respond


class Me(BaseModel):
    name: str
    is_admin: bool
    created_at: str = Field(description="UTC, ISO 8601")
    auth: Literal["password", "app-password", "bearer", "session"] = Field(
        description="the kind of credential this request used")


async def get_me(request: web.Request) -> web.Response:
    identity = await require_user(request)
    user = await request.app[DATABASE].read(lambda db: accounts.get_user(db, identity.user))
    if user is None:  # deleted between authentication and now
        raise Unauthorized("this account no longer exists")
    return respond(Me(name=user["name"], is_admin=user["is_admin"], created_at=user["created_at"],
                      auth=identity.via))


ROUTES = (
    Route("GET", "/api/v1/me", get_me, "The authenticated user", tag="me", response=Me),
)
