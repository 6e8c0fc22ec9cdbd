"""/api/v1/session: the web UI's login (a session cookie) and logout."""
from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from services.core import accounts, sessions
from services.core.auth import AUTHENTICATOR, require_user
from services.core.errors import BadRequest
from services.core.http import DATABASE, read_json
from services.core.routing import Route, respond


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=accounts.MAX_PASSWORD_LENGTH,
                          description="the account password or one of the user's app passwords")


class Session(BaseModel):
    user: str
    is_admin: bool
    csrf_token: str = Field(description=f"send it back in {sessions.CSRF_HEADER} with every request "
                                        "that is not GET, HEAD or OPTIONS")
    expires_at: str = Field(description="UTC, ISO 8601: the latest the session can last; "
                                        f"it ends sooner after {int(sessions.IDLE_TIMEOUT // 3600)} idle hours")


def _iso(seconds: float) -> str:
    return accounts.now_iso(datetime.fromtimestamp(seconds, timezone.utc))


def came_over_https(request: web.Request) -> bool:
    """True for TLS to this daemon, or to the front end in front of it (its X-Forwarded-Proto).

    Believing a client that claims https only makes its own cookie stricter.
    """
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
    return request.secure or forwarded == "https"


async def create_session(request: web.Request) -> web.Response:
    body = await read_json(request, Login)
    identity = await request.app[AUTHENTICATOR].login(request, body.user, body.password)
    row, token = await request.app[DATABASE].write(lambda db: sessions.create_session(db, identity.user))
    response = respond(Session(user=row["user"], is_admin=row["is_admin"], csrf_token=row["csrf_token"],
                               expires_at=_iso(row["expires_at"])), status=201)
    response.set_cookie(sessions.COOKIE_NAME, token, path="/", httponly=True, samesite="Strict",
                        secure=came_over_https(request), max_age=int(sessions.ABSOLUTE_TIMEOUT))
    return response


async def get_session(request: web.Request) -> web.Response:
    identity = await require_user(request)
    if identity.via != "session":
        raise BadRequest("this request was not made with a session cookie")
    row = await request.app[DATABASE].read(
        lambda db: db.execute("SELECT expires_at FROM sessions WHERE id = ?", [identity.session_id]).fetchone())
    return respond(Session(user=identity.user, is_admin=identity.is_admin, csrf_token=identity.csrf_token or "",
                           expires_at=_iso(row[0])))


async def delete_session(request: web.Request) -> web.Response:
    identity = await require_user(request)
    if identity.session_id is not None:
        await request.app[DATABASE].write(lambda db: sessions.delete_session(db, identity.session_id))
    response = web.Response(status=204)
    response.del_cookie(sessions.COOKIE_NAME, path="/")
    return response


ROUTES = (
    Route("POST", "/api/v1/session", create_session,
          "Log in: set the web UI's session cookie (HttpOnly, SameSite=Strict) and return its CSRF token",
          tag="session", access="public", body=Login, response=Session, status=201, errors=(401, 429)),
    Route("GET", "/api/v1/session", get_session, "The session this request's cookie belongs to",
          tag="session", response=Session),
    Route("DELETE", "/api/v1/session", delete_session,
          "Log out: the session cookie stops working in every daemon", tag="session", status=204),
)
