"""Which collections a user reaches, and with what access: their own, and those shared with them.

A collection shared with bob appears in bob's home under a mount name,
`<name>_shared_by_<owner>` (as Nextcloud names them, so clients and people
recognise it), and is also reachable at its owner's URL. Owners keep every
right; a grantee has what the share gives, 'read' or 'read-write'.
"""
from __future__ import annotations

from dataclasses import replace

import sqlite_utils

from .collections import Collection, find_collection, list_collections
from .names import SHARED_BY

OWNER, READ_WRITE, READ = "owner", "read-write", "read"


def mount_name(collection: Collection) -> str:
    """The name a shared collection has in its grantee's home."""
    return f"{collection.name}{SHARED_BY}{collection.owner}"


def visible_collection(db: sqlite_utils.Database, user: str, home_user: str, kind: str,
                       name: str) -> Collection | None:
    """The collection at `/<kind>/<home_user>/<name>/` as `user` sees it (with .access), or None.

    None covers "does not exist" and "exists but is not yours and not shared
    with you" alike, so nobody learns the names of others' collections."""
    if home_user == user:
        own = find_collection(db, user, kind, name)
        if own is not None:
            return own
        owner_name, sep, owner = name.rpartition(SHARED_BY)
        if not sep:
            return None
        return _shared(db, user, kind, owner, owner_name)
    return _shared(db, user, kind, home_user, name)


def access_of(db: sqlite_utils.Database, collection: Collection, user: str) -> str | None:
    """'owner', 'read-write', 'read' or None."""
    if collection.owner == user:
        return OWNER
    row = db.execute("SELECT mode FROM dav_shares WHERE collection_id = ? AND grantee = ?",
                     [collection.id, user]).fetchone()
    return row[0] if row else None


def mounted(db: sqlite_utils.Database, user: str, kind: str) -> list[tuple[str, Collection]]:
    """(name in the user's home, collection) for every collection of this kind they reach, own first."""
    return [(c.name if c.owner == user else mount_name(c), c) for c in list_collections(db, user, kind)]


def _shared(db, user: str, kind: str, owner: str, name: str) -> Collection | None:
    found = find_collection(db, owner, kind, name)
    if found is None:
        return None
    mode = access_of(db, found, user)
    if mode is None:
        return None
    return found if mode == OWNER else replace(found, access=mode)
