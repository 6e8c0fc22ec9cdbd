"""Schedule-Tag (RFC 6638 §3.2.10): a tag that moves only with the organizer's changes.

An organizer's PUT and a delivery of the organizer's update to an attendee
give the resource a new tag; an attendee's reply updating a PARTSTAT in the
organizer's copy, or an attendee changing their own PARTSTAT, keep it. A
client that sends If-Schedule-Tag-Match instead of If-Match is therefore not
refused over changes that do not conflict with its own.
"""
from __future__ import annotations

import secrets

import sqlite_utils

from ..errors import PreconditionFailed


def schedule_tag(db: sqlite_utils.Database, collection_id: int, name: str) -> str | None:
    row = db.execute("SELECT tag FROM dav_schedule_tags WHERE collection_id = ? AND name = ?",
                     [collection_id, name]).fetchone()
    return row[0] if row else None


def new_tag(db: sqlite_utils.Database, collection_id: int, name: str) -> str:
    """Give the (stored) item a fresh Schedule-Tag; returns it."""
    tag = f'"{secrets.token_hex(8)}"'
    db.execute("""INSERT INTO dav_schedule_tags (collection_id, name, tag) VALUES (?, ?, ?)
                  ON CONFLICT (collection_id, name) DO UPDATE SET tag = excluded.tag""", [collection_id, name, tag])
    return tag


def ensure_tag(db: sqlite_utils.Database, collection_id: int, name: str) -> str:
    """The item's Schedule-Tag, given one if it has none yet."""
    return schedule_tag(db, collection_id, name) or new_tag(db, collection_id, name)


def check_tag_match(db: sqlite_utils.Database, collection_id: int, name: str, header: str | None) -> None:
    """PreconditionFailed (412) unless If-Schedule-Tag-Match (when sent) names the current tag."""
    if header is None:
        return
    current = schedule_tag(db, collection_id, name)
    if current is None or current != header.strip():
        raise PreconditionFailed(f"{name}: Schedule-Tag is {current or 'unset'}, not {header.strip()}")
