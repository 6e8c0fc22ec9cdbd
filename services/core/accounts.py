"""Accounts and app passwords: the rules and the rows, no HTTP.

Every function takes a `sqlite_utils.Database` and leaves transactions to the
caller (`write(db, fn)` in commands, `await database.write(fn)` in daemons), so
several of them compose into one transaction. Domain errors are the HTTPError
subclasses from core.errors: the HTTP middleware and the CLI both show their
reason. Argon2 is deliberately slow, so `hash_password`/`verify_password` are
separate: run them before (or outside) a write transaction, never inside one.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import re
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from .errors import BadRequest, Conflict, NotFound

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
NAME_RULE = ("1 to 64 characters: lowercase letters a-z, digits, '.', '_' or '-', "
             "starting with a letter or digit")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this only bounds the work per request
MAX_LABEL_LENGTH = 100

APP_PASSWORD_PREFIX = "hearth-"
TOUCH_INTERVAL = timedelta(minutes=1)

# argon2-cffi's defaults are RFC 9106's "low memory" profile (argon2id, 64 MiB, t=3).
_hasher = PasswordHasher()


# Subsystems that keep per-user data outside the users/app_passwords tables
# register "module:function" here; delete_user calls each one with
# (db, user_row) inside the same transaction, before the user row goes.
# Imported lazily so every caller (CLI, API) runs the same list.
USER_DATA_DELETERS: tuple[str, ...] = ("services.dav.store.sharing:delete_user_collections",
                                        "services.dav.store.revisions:delete_revisions_of",
                                        "services.core.tree.erase:delete_user_folders",
                                        "services.files.locks:delete_locks_of")


def now_iso(now: datetime | None = None) -> str:
    """UTC timestamp in one fixed-width form, so stored values sort as text."""
    return (now or datetime.now(timezone.utc)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- rules -------------------------------------------------------------------

def normalize_name(name: str) -> str:
    """The canonical (lowercase) user name, or BadRequest saying the rule.

    Names become URL path segments (/dav/calendars/<user>/, /files/<user>/), so
    only ASCII is accepted: Unicode case folding would let two spellings collide.
    """
    if not isinstance(name, str) or not name.isascii():
        raise BadRequest(f"user name {name!r} is invalid: {NAME_RULE}")
    folded = name.lower()
    if not NAME_PATTERN.fullmatch(folded):
        raise BadRequest(f"user name {name!r} is invalid: {NAME_RULE}")
    return folded


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise BadRequest(f"password is too short: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise BadRequest(f"password is too long: at most {MAX_PASSWORD_LENGTH} characters")


def _check_label(label: str) -> str:
    label = label.strip()
    if not label:
        raise BadRequest("label must not be empty: name the device or app, e.g. 'phone'")
    if len(label) > MAX_LABEL_LENGTH:
        raise BadRequest(f"label is too long: at most {MAX_LABEL_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in label):
        raise BadRequest("label must not contain control characters")
    return label


# --- password hashing (slow: never inside a write transaction) ---------------

def hash_password(password: str) -> str:
    """An argon2id hash of a password that satisfies the rules (BadRequest otherwise)."""
    check_password_rules(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True if `password` matches; False for a mismatch or an unreadable hash."""
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password: verifying against it when the user does not
    exist costs as much as a real check, so response times do not reveal user names."""
    return _hasher.hash(secrets.token_urlsafe(16))


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except InvalidHashError:
        return False


def token_hash(secret: str) -> str:
    """How an app password is stored: it is random enough that SHA-256 suffices."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


# --- users -------------------------------------------------------------------

def _user_row(row: tuple) -> dict[str, Any]:
    return {"id": row[0], "name": row[1], "password_hash": row[2], "is_admin": bool(row[3]),
            "created_at": row[4]}


def get_user(db: sqlite_utils.Database, name: str) -> dict[str, Any] | None:
    """The user's row including `password_hash` (keep it server-side), or None."""
    try:
        name = normalize_name(name)
    except BadRequest:
        return None
    row = db.execute("SELECT id, name, password_hash, is_admin, created_at FROM users WHERE name = ?",
                     [name]).fetchone()
    return _user_row(row) if row else None


def _require_user(db: sqlite_utils.Database, name: str) -> dict[str, Any]:
    user = get_user(db, name)
    if user is None:
        raise NotFound(f"no user named {name!r}")
    return user


def create_user(db: sqlite_utils.Database, name: str, password_hash: str, *,
                admin: bool = False) -> dict[str, Any]:
    """Add a user; Conflict if the name is taken, BadRequest if it breaks the rule."""
    name = normalize_name(name)
    if get_user(db, name) is not None:
        raise Conflict(f"user {name!r} already exists")
    db.execute("INSERT INTO users (name, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?)",
               [name, password_hash, int(admin), now_iso()])
    return _require_user(db, name)


def list_users(db: sqlite_utils.Database) -> list[dict[str, Any]]:
    """Every user with the number of their active app passwords, by name."""
    rows = db.execute("""
        SELECT u.name, u.is_admin, u.created_at,
               (SELECT count(*) FROM app_passwords a WHERE a.user_id = u.id AND a.revoked_at IS NULL)
        FROM users u ORDER BY u.name""").fetchall()
    return [{"name": r[0], "is_admin": bool(r[1]), "created_at": r[2], "app_passwords": r[3]} for r in rows]


def set_password(db: sqlite_utils.Database, name: str, password_hash: str) -> None:
    """Replace a user's password hash (NotFound if there is no such user)."""
    user = _require_user(db, name)
    db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [password_hash, user["id"]])


def replace_password_hash(db: sqlite_utils.Database, name: str, old_hash: str, new_hash: str) -> bool:
    """Swap in a rehashed password only if nobody changed it meanwhile."""
    cursor = db.execute("UPDATE users SET password_hash = ? WHERE name = ? AND password_hash = ?",
                        [new_hash, name, old_hash])
    return cursor.rowcount == 1


def delete_user(db: sqlite_utils.Database, name: str) -> None:
    """Delete a user and everything that is theirs (NotFound if there is no such user)."""
    user = _require_user(db, name)
    for target in USER_DATA_DELETERS:
        module_name, _, function = target.partition(":")
        deleter: Callable[[sqlite_utils.Database, dict], None] = getattr(
            importlib.import_module(module_name), function)
        deleter(db, user)
    # The foreign key cascades too; saying it here keeps it true on any connection.
    db.execute("DELETE FROM app_passwords WHERE user_id = ?", [user["id"]])
    db.execute("DELETE FROM user_addresses WHERE user_id = ?", [user["id"]])
    db.execute("DELETE FROM users WHERE id = ?", [user["id"]])


# --- app passwords -----------------------------------------------------------

def _app_password_row(row: tuple) -> dict[str, Any]:
    return {"id": row[0], "label": row[1], "created_at": row[2], "last_used_at": row[3]}


def create_app_password(db: sqlite_utils.Database, user: str, label: str) -> tuple[dict[str, Any], str]:
    """A new app password for `user`: (row, secret). The secret is only ever returned here."""
    label = _check_label(label)
    owner = _require_user(db, user)
    secret = APP_PASSWORD_PREFIX + secrets.token_urlsafe(24)
    cursor = db.execute(
        "INSERT INTO app_passwords (user_id, label, token_hash, created_at) VALUES (?, ?, ?, ?)",
        [owner["id"], label, token_hash(secret), now_iso()])
    row = db.execute("SELECT id, label, created_at, last_used_at FROM app_passwords WHERE id = ?",
                     [cursor.lastrowid]).fetchone()
    return {**_app_password_row(row), "user": owner["name"]}, secret


def list_app_passwords(db: sqlite_utils.Database, user: str) -> list[dict[str, Any]]:
    """The user's app passwords that are not revoked, oldest first."""
    owner = _require_user(db, user)
    rows = db.execute("""
        SELECT id, label, created_at, last_used_at FROM app_passwords
        WHERE user_id = ? AND revoked_at IS NULL ORDER BY id""", [owner["id"]]).fetchall()
    return [_app_password_row(row) for row in rows]


def revoke_app_password(db: sqlite_utils.Database, user: str, app_password_id: int) -> None:
    """Revoke one of the user's app passwords; NotFound if not theirs or already revoked."""
    owner = _require_user(db, user)
    cursor = db.execute(
        "UPDATE app_passwords SET revoked_at = ? WHERE id = ? AND user_id = ? AND revoked_at IS NULL",
        [now_iso(), app_password_id, owner["id"]])
    if cursor.rowcount != 1:
        raise NotFound(f"user {owner['name']!r} has no active app password {app_password_id}")


def find_app_password(db: sqlite_utils.Database, secret: str) -> dict[str, Any] | None:
    """The active app password with this secret and its owner, or None."""
    row = db.execute("""
        SELECT a.id, a.label, a.created_at, a.last_used_at, u.name, u.is_admin
        FROM app_passwords a JOIN users u ON u.id = a.user_id
        WHERE a.token_hash = ? AND a.revoked_at IS NULL""", [token_hash(secret)]).fetchone()
    if row is None:
        return None
    return {**_app_password_row(row[:4]), "user": row[4], "is_admin": bool(row[5])}


def touch_app_password(db: sqlite_utils.Database, app_password_id: int, *,
                       now: datetime | None = None) -> bool:
    """Record use of an app password, at most once per TOUCH_INTERVAL; True if it wrote."""
    now = now or datetime.now(timezone.utc)
    cursor = db.execute("""
        UPDATE app_passwords SET last_used_at = ?
        WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)""",
                        [now_iso(now), app_password_id, now_iso(now - TOUCH_INTERVAL)])
    return cursor.rowcount == 1
