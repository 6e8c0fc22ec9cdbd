"""HTTP Basic and bearer authentication, shared by every hearth daemon.

DAV and WebDAV clients send Basic credentials with every request, so the
common case must be cheap: app passwords are checked with one SHA-256 lookup,
and a verified account password is remembered briefly (keyed on the stored
hash, so a password change invalidates it). Argon2 runs in a thread, a few at
a time, and never on the event loop. Failed logins are limited per client
address, counted in the shared database so that every daemon enforces one
limit that survives restarts (core.ratelimit); a successful login writes nothing.

The web UI logs in once (POST /api/v1/session) and then sends a session
cookie instead (core.sessions). A cookie comes with every request the browser
makes, even one another site provoked, so a request it authenticates with an
unsafe method must also carry the session's CSRF token in `X-CSRF-Token`.
Basic and bearer requests are unaffected: no browser adds those on its own.

Handlers call `await require_user(request)` or `await require_admin(request)`.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import secrets
import socket
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import AsyncIterator, Callable, Literal

from aiohttp import hdrs, web

from . import accounts, sessions
from .config import Config
from .db import Database
from .errors import BadRequest, Forbidden, Unauthorized
from .http import AUTHENTICATED_HEADER, CONFIG, DATABASE
from .ratelimit import FailureLimiter, client_key

log = logging.getLogger("auth")

Via = Literal["password", "app-password", "bearer", "session"]
# Methods a cross-site page can make a browser send with its cookies and no CSRF token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Identity:
    """Who made a request, and with which kind of credential."""

    user: str
    is_admin: bool
    via: Via
    app_password_id: int | None = None
    session_id: int | None = None
    csrf_token: str | None = None


class SessionRequired(Unauthorized):
    """401 for the web UI: no Basic challenge, which would make the browser open its own login dialog."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.headers = {"WWW-Authenticate": 'Session realm="hearth"'}


def client_address(request: web.Request) -> str:
    """The address failed logins are counted against.

    Over TCP it is the peer. Over a Unix socket the peer is the front end (the
    suite's daemons listen on var/run/*.sock behind it), and request.remote is
    empty: the front puts the client address it decided on first in
    X-Forwarded-For, so that entry is used. Over TCP X-Forwarded-For is
    whatever the client claims, so it is ignored there.
    """
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None and sock.family == socket.AF_UNIX:
        first = request.headers.get("X-Forwarded-For", "").split(",", 1)[0].strip()
        if first:
            return first
    return request.remote or "unknown"


class Authenticator:
    """Checks a request's credentials; one per application, see `setup_auth`."""

    verified_ttl = 120.0     # seconds a verified account password is remembered
    verified_max = 4096      # remembered verifications, at most
    touch_interval = accounts.TOUCH_INTERVAL.total_seconds()

    def __init__(self, config: Config, database: Database, *, clock: Callable[[], float] = time.monotonic,
                 argon2_workers: int | None = None):
        self.database = database
        self.limiter = FailureLimiter(database, "login", config.auth.max_failures, config.auth.failure_window)
        self._clock = clock
        # Cache keys hold an HMAC of the password under a per-process key, never the password.
        self._cache_secret = secrets.token_bytes(32)
        self._verified: OrderedDict[tuple[str, bytes, str], float] = OrderedDict()
        self._in_flight: dict[tuple, asyncio.Task[bool]] = {}
        # Each argon2 check takes 64 MiB and a core: bound how many run at once.
        self._argon2 = asyncio.Semaphore(argon2_workers or max(1, min(4, os.cpu_count() or 1)))
        self._touched: dict[int, float] = {}

    async def authenticate(self, request: web.Request) -> Identity:
        """The request's Identity, or Unauthorized (401) / TooManyRequests (429)."""
        address = client_address(request)
        await self._check_limit(address)
        header = request.headers.get(hdrs.AUTHORIZATION, "")
        if not header.strip():
            token = request.cookies.get(sessions.COOKIE_NAME)
            if token:
                return await self._check_session(request, token)
            if sessions.CSRF_HEADER in request.headers:  # the web UI, after its cookie expired
                raise SessionRequired("authentication required")
            raise Unauthorized("authentication required")
        scheme, _, value = header.strip().partition(" ")
        scheme, value = scheme.lower(), value.strip()
        user, identity = None, None
        if scheme == "basic":
            credentials = _decode_basic(value)
            if credentials is not None:
                user, password = credentials
                identity = await self._check_basic(user, password, address)
        elif scheme == "bearer" and value:
            identity = await self._check_app_password(value, None, "bearer")
        if identity is None:
            await self._record_failure(address, user)
            raise Unauthorized("wrong user name or password")
        return identity

    async def login(self, request: web.Request, user: str, password: str) -> Identity:
        """Check the web UI login form's user and password (or app password), rate limited like Basic."""
        address = client_address(request)
        await self._check_limit(address)
        identity = await self._check_basic(user, password, address)
        if identity is None:
            await self._record_failure(address, user)
            raise SessionRequired("wrong user name or password")
        return identity

    async def session_identity(self, request: web.Request) -> Identity | None:
        """The Identity of the request's session cookie alone, or None: for the web UI's pages,
        which need the session (and its CSRF token) even when the browser also sends Basic."""
        token = request.cookies.get(sessions.COOKIE_NAME)
        if not token:
            return None
        try:
            return await self._check_session(request, token)
        except Unauthorized:
            return None

    async def _record_failure(self, address: str, user: str | None) -> None:
        await self.limiter.record_failure(address)
        log.info("failed login from %s for user %r", address, user if user is not None else "-")

    async def _check_session(self, request: web.Request, token: str) -> Identity:
        session = await self.database.read(lambda db: sessions.find_session(db, token))
        if session is None:
            raise SessionRequired("your session has ended; log in again")
        if request.method not in SAFE_METHODS:
            sent = request.headers.get(sessions.CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode(), session["csrf_token"].encode()):
                raise Forbidden(f"a request with the session cookie and method {request.method} needs the "
                                f"session's {sessions.CSRF_HEADER} header")
        if time.time() - session["last_seen_at"] >= sessions.TOUCH_INTERVAL:
            await self.database.write(lambda db: sessions.touch_session(db, session["id"]))
        return Identity(session["user"], session["is_admin"], "session", session_id=session["id"],
                        csrf_token=session["csrf_token"])

    async def hash_password(self, password: str) -> str:
        """accounts.hash_password in a thread, sharing the argon2 concurrency bound."""
        accounts.check_password_rules(password)
        async with self._argon2:
            return await asyncio.to_thread(accounts.hash_password, password)

    async def _check_limit(self, address: str) -> None:
        await self.limiter.check(address, "failed logins")

    async def _check_basic(self, name: str, password: str, address: str) -> Identity | None:
        try:
            name = accounts.normalize_name(name)
        except BadRequest:
            return None
        if password.startswith(accounts.APP_PASSWORD_PREFIX):
            identity = await self._check_app_password(password, name, "app-password")
            if identity is not None:
                return identity
        return await self._check_password(name, password, address)

    async def _check_app_password(self, secret: str, name: str | None, via: Via) -> Identity | None:
        row = await self.database.read(lambda db: accounts.find_app_password(db, secret))
        if row is None or (name is not None and row["user"] != name):
            return None
        await self._touch(row)
        return Identity(row["user"], row["is_admin"], via, row["id"])

    async def _touch(self, row: dict) -> None:
        """Update last_used_at at most once a minute per token, so reads stay reads."""
        now = self._clock()
        last = self._touched.get(row["id"])
        if last is not None and now - last < self.touch_interval:
            return
        self._touched[row["id"]] = now
        if len(self._touched) > 10_000:
            self._touched = {key: t for key, t in self._touched.items() if now - t < self.touch_interval}
        recent = accounts.now_iso(datetime.now(timezone.utc) - accounts.TOUCH_INTERVAL)
        if row["last_used_at"] is not None and row["last_used_at"] > recent:
            return
        await self.database.write(lambda db: accounts.touch_app_password(db, row["id"]))

    async def _check_password(self, name: str, password: str, address: str) -> Identity | None:
        user = await self.database.read(lambda db: accounts.get_user(db, name))
        stored = user["password_hash"] if user else None
        key = (name, hmac.new(self._cache_secret, password.encode(),
                              hashlib.sha256).digest(), stored or "")
        if user is None or not self._remembered(key):
            if not await self._verify(key, address, stored, password) or user is None:
                return None
            self._remember(key)
            if accounts.needs_rehash(stored):
                await self._rehash(name, stored, password)
        return Identity(name, user["is_admin"], "password")

    async def _verify(self, key: tuple, address: str, stored: str | None, password: str) -> bool:
        """One argon2 check; concurrent identical attempts from one address share it."""
        flight_key = (client_key(address), key)
        task = self._in_flight.get(flight_key)
        if task is None:
            task = asyncio.ensure_future(self._run_verify(address, stored, password))
            self._in_flight[flight_key] = task
            task.add_done_callback(lambda done: self._settle(flight_key, done))
        return await asyncio.shield(task)

    def _settle(self, flight_key: tuple, task: asyncio.Task) -> None:
        self._in_flight.pop(flight_key, None)
        if not task.cancelled():
            task.exception()  # retrieved here too, in case every waiter has gone

    async def _run_verify(self, address: str, stored: str | None, password: str) -> bool:
        async with self._argon2:
            # Failures may have been counted while this waited: check again, so
            # a burst of parallel guesses cannot slip past the limit.
            await self._check_limit(address)
            # An unknown user costs the same as a known one: timing reveals no names.
            return await asyncio.to_thread(
                lambda: accounts.verify_password(stored or accounts.dummy_hash(), password))

    async def _rehash(self, name: str, old_hash: str, password: str) -> None:
        try:
            new_hash = await self.hash_password(password)
        except BadRequest:  # the password predates today's rules; keep the old hash
            return
        await self.database.write(lambda db: accounts.replace_password_hash(db, name, old_hash, new_hash))

    def _remembered(self, key: tuple) -> bool:
        expires = self._verified.get(key)
        if expires is None:
            return False
        if expires <= self._clock():
            del self._verified[key]
            return False
        return True

    def _remember(self, key: tuple) -> None:
        self._verified[key] = self._clock() + self.verified_ttl
        self._verified.move_to_end(key)
        while len(self._verified) > self.verified_max:
            self._verified.popitem(last=False)


def _decode_basic(value: str) -> tuple[str, str] | None:
    """(user, password) from a Basic credential, or None if it is malformed."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
IDENTITY = web.RequestKey("identity", Identity)


def setup_auth(app: web.Application) -> None:
    """Give an app built by create_base_app its Authenticator (after the database starts)."""
    app.cleanup_ctx.append(_auth_context)
    app.on_response_prepare.append(_mark_authenticated)


async def _mark_authenticated(request: web.Request, response: web.StreamResponse) -> None:
    """Tell the front end this request's credentials were good, so it never throttles them."""
    if IDENTITY in request:
        response.headers[AUTHENTICATED_HEADER] = "1"


async def _auth_context(app: web.Application) -> AsyncIterator[None]:
    app[AUTHENTICATOR] = Authenticator(app[CONFIG], app[DATABASE])
    await asyncio.to_thread(accounts.dummy_hash)  # computed once, off the event loop
    yield


async def require_user(request: web.Request) -> Identity:
    """The authenticated Identity of this request (checked once, then kept on the request)."""
    identity = request.get(IDENTITY)
    if identity is None:
        identity = await request.config_dict[AUTHENTICATOR].authenticate(request)
        request[IDENTITY] = identity
    return identity


async def require_admin(request: web.Request) -> Identity:
    """Like require_user, but Forbidden (403) unless the user is an admin."""
    identity = await require_user(request)
    if not identity.is_admin:
        raise Forbidden(f"user {identity.user!r} is not an admin")
    return identity
