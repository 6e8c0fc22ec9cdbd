"""A user's schedule inbox and outbox (RFC 6638 §2.1, §2.2) and their default calendar.

Both are calendar collections named `inbox` and `outbox` in the user's
calendar home (the store reserves the names), so the inbox's iTIP messages
are ordinary items with ETags, change log and sync tokens. They are told
apart from calendars by name only: their resourcetype says schedule-inbox /
schedule-outbox instead of calendar, so clients do not show them as calendars.
"""
from __future__ import annotations

import hashlib

import sqlite_utils

from ..store import CALENDAR, Collection, ensure_defaults, find_item, list_collections
from ..store.collections import SCHEDULING, create_collection, find_collection

INBOX, OUTBOX = SCHEDULING


def role(collection: Collection | None) -> str | None:
    """'inbox', 'outbox' or None (an ordinary collection)."""
    if collection is not None and collection.kind == CALENDAR and collection.name in SCHEDULING:
        return collection.name
    return None


def mailbox(db: sqlite_utils.Database, user: str, name: str) -> Collection:
    """The user's inbox or outbox, created if they have never logged in since scheduling arrived."""
    found = find_collection(db, user, CALENDAR, name)
    if found is None:
        found = create_collection(db, user, CALENDAR, name, displayname=name.capitalize(), scheduling=True)
    return found


def calendars(db: sqlite_utils.Database, user: str) -> list[Collection]:
    """The user's own calendars, without the inbox and outbox."""
    return [c for c in list_collections(db, user, CALENDAR) if c.owner == user and role(c) is None]


def default_calendar(db: sqlite_utils.Database, user: str, component: str = "VEVENT", *,
                     create: bool = True) -> Collection | None:
    """Where invitations land (schedule-default-calendar-URL): "calendar" if it takes the component,
    else the first calendar that does; with `create` (in a write), made when the user has none."""
    own = calendars(db, user)
    if not own and create:
        ensure_defaults(db, user)
        own = calendars(db, user)
    fitting = [c for c in own if component in c.components]
    preferred = [c for c in fitting if c.name == "calendar"]
    return (preferred or fitting or [None])[0]


def find_by_uid(db: sqlite_utils.Database, user: str, uid: str) -> tuple[Collection, str] | None:
    """(calendar, item name) of the user's own calendar object with this UID, if they have one."""
    for collection in calendars(db, user):
        row = db.execute("SELECT name FROM dav_items WHERE collection_id = ? AND uid = ?",
                         [collection.id, uid]).fetchone()
        if row is not None:
            return collection, row[0]
    return None


def item_name(db: sqlite_utils.Database, collection: Collection, uid: str) -> str:
    """A name for a new item with this UID: `<uid>.ics` when the UID makes a safe, free name."""
    candidate = f"{uid}.ics"
    safe = len(candidate) <= 200 and not uid.startswith(".") and all(ch.isalnum() or ch in "-_.@" for ch in uid)
    if safe and find_item(db, collection.id, candidate) is None:
        return candidate
    return message_name(uid)


def message_name(uid: str) -> str:
    """The inbox item for a UID: one per event, the latest message replacing the one before, so an
    inbox nobody empties stays one entry per event."""
    return hashlib.sha256(uid.encode()).hexdigest()[:32] + ".ics"


def ensure_mailboxes(db: sqlite_utils.Database, user: str) -> None:
    """Make sure the user has an inbox and an outbox (run at login, next to ensure_defaults)."""
    for name in (INBOX, OUTBOX):
        mailbox(db, user, name)
