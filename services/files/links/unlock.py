"""Password-protected links: the password form's check, its rate limit, and the cookie that remembers it.

The cookie holds an expiry and an HMAC of (token, expiry) keyed by the link's
argon2 hash: the hash never leaves the server and is salted per link, so the
cookie cannot be forged, needs no key file or table, is valid in every process
serving links, and stops working the moment the owner changes the password.
It is HttpOnly, SameSite=Strict and scoped to /s/<token>, so it is sent for
this link only.
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import time

from aiohttp import web

from services.core import accounts
from services.core.auth import client_address
from services.core.http import CONFIG, DATABASE
from services.core.numbers import whole_number
from services.core.ratelimit import FailureLimiter

from services.core.share_links import Link

COOKIE = "hearth_link"
UNLOCKED_FOR = 12 * 3600  # seconds a correct password is remembered
MAX_PASSWORD_BYTES = 1024

def limiter_for(request: web.Request) -> FailureLimiter:
    """Wrong link passwords, counted per address in the shared database like failed logins."""
    auth = request.config_dict[CONFIG].auth
    return FailureLimiter(request.config_dict[DATABASE], "link-password", auth.max_failures, auth.failure_window)


def _signature(link: Link, expires: int) -> str:
    message = f"{link.token}\x00{expires}".encode()
    return hmac.new(link.password_hash.encode(), message, hashlib.sha256).hexdigest()


def is_unlocked(request: web.Request, link: Link) -> bool:
    """True for a link without a password, or when the request carries this link's valid cookie."""
    if not link.has_password:
        return True
    expires, _, signature = request.cookies.get(COOKIE, "").partition(".")
    until = whole_number(expires)
    if until is None or until < time.time():
        return False
    return hmac.compare_digest(signature, _signature(link, until))


async def try_password(request: web.Request, link: Link, password: str) -> bool:
    """Check a submitted password (TooManyRequests while this address is locked out); a wrong one counts."""
    limiter, address = limiter_for(request), client_address(request)
    await limiter.check(address, "wrong passwords")
    if len(password.encode()) <= MAX_PASSWORD_BYTES and await asyncio.to_thread(
            accounts.verify_password, link.password_hash, password):
        return True
    await limiter.record_failure(address)
    return False


def remember(response: web.StreamResponse, link: Link, secure: bool) -> None:
    """Set the cookie that lets this browser in for UNLOCKED_FOR seconds."""
    expires = int(time.time()) + UNLOCKED_FOR
    response.set_cookie(COOKIE, f"{expires}.{_signature(link, expires)}", max_age=UNLOCKED_FOR,
                        path=f"/s/{link.token}", httponly=True, samesite="Strict", secure=secure)
