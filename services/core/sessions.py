"""Web UI login sessions: a random cookie token, stored only as its SHA-256.

A session ends on logout, after IDLE_TIMEOUT without a request, or at
ABSOLUTE_TIMEOUT after login, whichever comes first. Each session carries a
CSRF token the page sends back in `X-CSRF-Token` on every unsafe request
(core.auth checks it); the cookie alone never authorises a change.

Functions take a sqlite_utils.Database and run inside the caller's
transaction (Database.read / Database.write).
"""
from __future__ import annotations

import secrets
import time
from typing import Any

import sqlite_utils

from .accounts import get_user, token_hash

COOKIE_NAME = "hearth_session"
CSRF_HEADER = "X-CSRF-Token"
IDLE_TIMEOUT = 8 * 3600.0          # seconds without a request
ABSOLUTE_TIMEOUT = 7 * 24 * 3600.0  # seconds after login, however active
TOUCH_INTERVAL = 60.0              # last_seen_at is written at most this often


def create_session(db: sqlite_utils.Database, user: str, *, now: float | None = None) -> tuple[dict[str, Any], str]:
    """A new session for `user`: (row, cookie token). The token is only ever returned here."""
    owner = get_user(db, user)
    if owner is None:
        raise LookupError(f"no user named {user!r}")
    now = time.time() if now is None else now
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    cursor = db.execute("""
        INSERT INTO sessions (user_id, token_hash, csrf_token, created_at, last_seen_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?)""", [owner["id"], token_hash(token), csrf, now, now, now + ABSOLUTE_TIMEOUT])
    delete_expired(db, now=now)
    return {"id": cursor.lastrowid, "user": owner["name"], "is_admin": owner["is_admin"], "csrf_token": csrf,
            "created_at": now, "last_seen_at": now, "expires_at": now + ABSOLUTE_TIMEOUT}, token


def find_session(db: sqlite_utils.Database, token: str, *, now: float | None = None) -> dict[str, Any] | None:
    """The live session with this cookie token and its user, or None (unknown, idle too long, or expired)."""
    now = time.time() if now is None else now
    row = db.execute("""
        SELECT s.id, u.name, u.is_admin, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at
        FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = ? AND s.expires_at > ? AND s.last_seen_at > ?""",
                     [token_hash(token), now, now - IDLE_TIMEOUT]).fetchone()
    if row is None:
        return None
    return {"id": row[0], "user": row[1], "is_admin": bool(row[2]), "csrf_token": row[3],
            "created_at": row[4], "last_seen_at": row[5], "expires_at": row[6]}


def touch_session(db: sqlite_utils.Database, session_id: int, *, now: float | None = None) -> bool:
    """Record activity (restarts the idle clock), at most once per TOUCH_INTERVAL; True if it wrote."""
    now = time.time() if now is None else now
    cursor = db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at <= ?",
                        [now, session_id, now - TOUCH_INTERVAL])
    return cursor.rowcount == 1


def delete_session(db: sqlite_utils.Database, session_id: int) -> None:
    """Log out: the cookie stops working at once, in every daemon."""
    db.execute("DELETE FROM sessions WHERE id = ?", [session_id])


def delete_expired(db: sqlite_utils.Database, *, now: float | None = None) -> int:
    """Drop sessions nobody can use any more; the number dropped."""
    now = time.time() if now is None else now
    cursor = db.execute("DELETE FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?",
                        [now, now - IDLE_TIMEOUT])
    return cursor.rowcount
