"""A user's own values of a collection's display properties: name, description, colour, place in the list.

CalendarServer sharing (§5.5.3) makes these per-user: a sharee names and
colours a calendar shared with them without changing it for its owner or
anyone else, and each user orders their own calendar list (Apple's
calendar-order). A value here overrides, for its user alone, the owner's
value kept on the collection.
"""
from __future__ import annotations

import sqlite_utils

from services.core.errors import BadRequest

PERSONAL = ("displayname", "description", "color", "order")


def personal_properties(db: sqlite_utils.Database, collection_id: int, user: str) -> dict[str, str]:
    """name -> the user's own value, for those they set."""
    return dict(db.execute("SELECT name, value FROM dav_personal_properties WHERE collection_id = ? AND user = ?",
                           [collection_id, user]).fetchall())


def set_personal_properties(db: sqlite_utils.Database, collection_id: int, user: str,
                            changes: dict[str, str | None]) -> None:
    """Set (None: remove) the user's own values; BadRequest for a name that is not personal."""
    unknown = set(changes) - set(PERSONAL)
    if unknown:
        raise BadRequest(f"cannot change {', '.join(sorted(unknown))} for yourself alone")
    for name, value in changes.items():
        if value is None:
            db.execute("DELETE FROM dav_personal_properties WHERE collection_id = ? AND user = ? AND name = ?",
                       [collection_id, user, name])
        else:
            db.execute("""INSERT INTO dav_personal_properties (collection_id, user, name, value) VALUES (?, ?, ?, ?)
                          ON CONFLICT (collection_id, user, name) DO UPDATE SET value = excluded.value""",
                       [collection_id, user, name, value])


def forget_personal_properties(db: sqlite_utils.Database, user: str, collection_id: int | None = None) -> None:
    """Drop the user's own values: of one collection (they left its share), or all (their account went)."""
    if collection_id is None:
        db.execute("DELETE FROM dav_personal_properties WHERE user = ?", [user])
    else:
        db.execute("DELETE FROM dav_personal_properties WHERE collection_id = ? AND user = ?", [collection_id, user])
