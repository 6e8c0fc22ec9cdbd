"""Login Flow v2's waiting devices, in the shared database (table login_flows).

A device starts a flow and gets two random tokens: one it polls with, one in
the URL it opens in a browser for its user to approve. Only their SHA-256 is
stored. Approval records who approved; the app password is made when the
device next polls, so no secret is ever stored. A flow is handed out once,
then deleted, and an unclaimed one lapses after FLOW_LIFETIME.

Functions take a sqlite_utils.Database and run inside the caller's
transaction (Database.read / Database.write).
"""
from __future__ import annotations

import secrets
import time
from typing import Any

import sqlite_utils

from services.core import accounts
from services.core.accounts import token_hash

FLOW_LIFETIME = 20 * 60.0  # seconds, as Nextcloud's own flows


def start_flow(db: sqlite_utils.Database, device: str, *, now: float | None = None) -> tuple[str, str]:
    """A new flow for `device` (its app password's label): (poll token, login token)."""
    now = time.time() if now is None else now
    delete_expired(db, now=now)
    poll, login = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
    db.execute("INSERT INTO login_flows (poll_token_hash, login_token_hash, device, created_at) VALUES (?, ?, ?, ?)",
               [token_hash(poll), token_hash(login), device, now])
    return poll, login


def pending_flow(db: sqlite_utils.Database, login_token: str, *, now: float | None = None) -> dict[str, Any] | None:
    """The live, not yet decided flow the browser's login token names, or None."""
    now = time.time() if now is None else now
    row = db.execute("""SELECT id, device FROM login_flows
                        WHERE login_token_hash = ? AND created_at > ? AND approved_by IS NULL""",
                     [token_hash(login_token), now - FLOW_LIFETIME]).fetchone()
    return None if row is None else {"id": row[0], "device": row[1]}


def decide(db: sqlite_utils.Database, login_token: str, user: str, approve: bool, *,
           now: float | None = None) -> dict[str, Any] | None:
    """Approve the flow for `user`, or deny it (it is deleted: the device's polls stay 404 until it
    gives up). The flow decided, or None if there was no pending one."""
    flow = pending_flow(db, login_token, now=now)
    if flow is None:
        return None
    if approve:
        owner = accounts.get_user(db, user)
        db.execute("UPDATE login_flows SET approved_by = ? WHERE id = ?", [owner["id"], flow["id"]])
    else:
        db.execute("DELETE FROM login_flows WHERE id = ?", [flow["id"]])
    return flow


def claim(db: sqlite_utils.Database, poll_token: str, *, now: float | None = None) -> tuple[str, str] | None:
    """For an approved flow: delete it and create its app password, (user, app password); else None."""
    now = time.time() if now is None else now
    row = db.execute("""SELECT f.id, f.device, u.name FROM login_flows f JOIN users u ON u.id = f.approved_by
                        WHERE f.poll_token_hash = ? AND f.created_at > ?""",
                     [token_hash(poll_token), now - FLOW_LIFETIME]).fetchone()
    if row is None:
        return None
    flow_id, device, user = row
    db.execute("DELETE FROM login_flows WHERE id = ?", [flow_id])
    _, secret = accounts.create_app_password(db, user, device)
    return user, secret


def delete_expired(db: sqlite_utils.Database, *, now: float | None = None) -> int:
    """Drop flows nobody can finish any more; the number dropped."""
    now = time.time() if now is None else now
    return db.execute("DELETE FROM login_flows WHERE created_at <= ?", [now - FLOW_LIFETIME]).rowcount
