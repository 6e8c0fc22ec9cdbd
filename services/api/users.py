"""/api/v1/users: account administration, for admins only."""
from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.core import accounts, addresses
from services.core.auth import AUTHENTICATOR, require_admin
from services.core.errors import Conflict
from services.core.http import CONFIG, DATABASE, read_json

from services.core.routing import Route, respond


class User(BaseModel):
    name: str
    is_admin: bool
    created_at: str = Field(description="UTC, ISO 8601")
    app_passwords: int = Field(description="active app passwords")


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description=f"user name, case-folded: {accounts.NAME_RULE}")
    password: str = Field(min_length=accounts.MIN_PASSWORD_LENGTH, max_length=accounts.MAX_PASSWORD_LENGTH)
    is_admin: bool = False
    emails: list[str] = Field(default=[], max_length=20,
                              description="email addresses the user is invited by (see /api/v1/users/{name}/addresses)")


async def list_users(request: web.Request) -> web.Response:
    rows = await request.app[DATABASE].read(accounts.list_users)
    return respond([User(**row) for row in rows])


async def create_user(request: web.Request) -> web.Response:
    body = await read_json(request, NewUser)
    name = accounts.normalize_name(body.name)
    database = request.app[DATABASE]
    # Cheap checks first: argon2 only runs for a request that can succeed.
    domain = request.app[CONFIG].dav.mail_domain
    if await database.read(lambda db: accounts.get_user(db, name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    await database.read(lambda db: [addresses.registrable(db, name, email, domain) for email in body.emails])
    password_hash = await request.app[AUTHENTICATOR].hash_password(body.password)

    def create(db) -> dict:
        user = accounts.create_user(db, name, password_hash, admin=body.is_admin)
        for email in body.emails:
            addresses.add_address(db, name, email, domain)
        return user

    user = await database.write(create)
    return respond(User(name=user["name"], is_admin=user["is_admin"], created_at=user["created_at"],
                        app_passwords=0), status=201)


async def delete_user(request: web.Request) -> web.Response:
    identity = await require_admin(request)
    name = request.match_info["name"]
    if name.lower() == identity.user:
        raise Conflict("you cannot delete your own account; another admin can, or use `hearth user del`")
    await request.app[DATABASE].write(lambda db: accounts.delete_user(db, name))
    return web.Response(status=204)


ROUTES = (
    Route("GET", "/api/v1/users", list_users, "Every user", tag="users", access="admin",
          response=User, many=True),
    Route("POST", "/api/v1/users", create_user, "Create a user", tag="users", access="admin",
          body=NewUser, response=User, status=201, errors=(409,)),  # 409 too for an address another user has
    Route("DELETE", "/api/v1/users/{name}", delete_user, "Delete a user and all their data", tag="users",
          access="admin", status=204, errors=(404, 409),
          path_params={"name": {"type": "string", "description": "the user name"}}),
)
