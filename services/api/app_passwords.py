"""/api/v1/me/app-passwords: per-device passwords for DAV, sync and scripts."""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.core import accounts
from services.core.auth import require_user
from services.core.http import DATABASE, read_json

from services.core.routing import Route, int_param, respond


class AppPassword(BaseModel):
    id: int
    label: str
    created_at: str = Field(description="UTC, ISO 8601")
    last_used_at: str | None = Field(description="UTC, ISO 8601; updated at most once a minute")


class NewAppPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=accounts.MAX_LABEL_LENGTH,
                       description="the device or app it is for, e.g. 'phone'")


class CreatedAppPassword(AppPassword):
    password: str = Field(description="the app password itself; shown only in this response")


async def list_app_passwords(request: web.Request) -> web.Response:
    identity = await require_user(request)
    rows = await request.app[DATABASE].read(lambda db: accounts.list_app_passwords(db, identity.user))
    return respond([AppPassword(**row) for row in rows])


async def create_app_password(request: web.Request) -> web.Response:
    identity = await require_user(request)
    body = await read_json(request, NewAppPassword)
    row, secret = await request.app[DATABASE].write(
        lambda db: accounts.create_app_password(db, identity.user, body.label))
    return respond(CreatedAppPassword(**row, password=secret), status=201)


async def revoke_app_password(request: web.Request) -> web.Response:
    identity = await require_user(request)
    app_password_id = int_param(request, "id")
    await request.app[DATABASE].write(
        lambda db: accounts.revoke_app_password(db, identity.user, app_password_id))
    return web.Response(status=204)


_ID = {"id": {"type": "integer", "description": "the app password's id"}}

ROUTES = (
    Route("GET", "/api/v1/me/app-passwords", list_app_passwords, "Your active app passwords",
          tag="me", response=AppPassword, many=True),
    Route("POST", "/api/v1/me/app-passwords", create_app_password,
          "Create an app password (the password is shown once)", tag="me",
          body=NewAppPassword, response=CreatedAppPassword, status=201),
    Route("DELETE", "/api/v1/me/app-passwords/{id}", revoke_app_password, "Revoke one of your app passwords",
          tag="me", status=204, errors=(404,), path_params=_ID),
)
