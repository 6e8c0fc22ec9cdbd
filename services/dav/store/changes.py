"""A collection's change log and its sync tokens (RFC 6578 sync-collection, and the ctag).

Every change to an item takes the collection's next sequence number. The log
keeps one row per item name — its latest change, a tombstone when that was a
delete — so "what changed since token N" is a range scan over the changes
since N, whatever the collection's size. Tombstones are never dropped, so a
token stays valid for as long as its collection exists.

Tokens are URIs (RFC 6578 §3.2 wants a URI): `http://hearth/ns/sync/<collection>-<seq>`.
Collection ids are never reused (AUTOINCREMENT), so a token is only ever
accepted by the collection that issued it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import sqlite_utils

from services.core.errors import NotFound

from ..errors import DAV, Precondition

TOKEN_PREFIX = "http://hearth/ns/sync/"
_TOKEN = re.compile(re.escape(TOKEN_PREFIX) + r"(\d{1,18})-(\d{1,18})")


@dataclass(frozen=True)
class Changes:
    changed: list[str]  # names to fetch (created or modified since the token)
    deleted: list[str]  # names gone since the token
    token: str  # where the next sync starts


def sync_token(collection_id: int, seq: int) -> str:
    return f"{TOKEN_PREFIX}{collection_id}-{seq}"


def record_change(db: sqlite_utils.Database, collection_id: int, name: str, deleted: bool) -> int:
    """Take the collection's next sequence number for a change to `name`; returns it."""
    row = db.execute("UPDATE dav_collections SET seq = seq + 1 WHERE id = ? RETURNING seq",
                     [collection_id]).fetchone()
    if row is None:
        raise NotFound(f"no collection {collection_id}")
    seq = row[0]
    db.execute("""
        INSERT INTO dav_changes (collection_id, seq, name, deleted) VALUES (?, ?, ?, ?)
        ON CONFLICT (collection_id, name) DO UPDATE SET seq = excluded.seq, deleted = excluded.deleted""",
        [collection_id, seq, name, int(deleted)])
    return seq


def changes_since(db: sqlite_utils.Database, collection_id: int, token: str | None) -> Changes:
    """Names changed and deleted since `token` (None or "" = initial sync: every item, no deletes).

    Raises NotFound (no collection) and Precondition DAV:valid-sync-token (403)
    for a token that is malformed, was issued by another collection, or is
    ahead of this collection's sequence.
    """
    row = db.execute("SELECT seq FROM dav_collections WHERE id = ?", [collection_id]).fetchone()
    if row is None:
        raise NotFound(f"no collection {collection_id}")
    current = row[0]
    if not token:
        names = [r[0] for r in db.execute(
            "SELECT name FROM dav_items WHERE collection_id = ? ORDER BY name", [collection_id])]
        return Changes(names, [], sync_token(collection_id, current))
    since = token_seq(token, collection_id, current)
    changed, deleted = [], []
    for name, gone in db.execute("""SELECT name, deleted FROM dav_changes
                                    WHERE collection_id = ? AND seq > ? ORDER BY seq""",
                                 [collection_id, since]):
        (deleted if gone else changed).append(name)
    return Changes(changed, deleted, sync_token(collection_id, current))


def token_seq(token: str, collection_id: int, current: int) -> int:
    """The sequence number a token of this collection stands for; DAV:valid-sync-token otherwise."""
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        raise _invalid(token, "not a sync token of this server")
    issuer, seq = int(match.group(1)), int(match.group(2))
    if issuer != collection_id:
        raise _invalid(token, "issued for another collection")
    if seq > current:
        raise _invalid(token, "ahead of this collection")
    return seq


def _invalid(token: str, why: str) -> Precondition:
    return Precondition(DAV, "valid-sync-token", f"{token[:100]!r} is {why}")
