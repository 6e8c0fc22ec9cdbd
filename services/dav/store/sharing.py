"""Which collections a user reaches, and with what access: their own, and those shared with them.

A collection shared with bob appears in bob's home under a mount name,
`<name>_shared_by_<owner>` (as Nextcloud names them, so clients and people
recognise it), and is also reachable at its owner's URL. Owners keep every
right; a grantee has what the share gives, 'read' or 'read-write'.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import sqlite_utils

from services.core.addresses import registered_addresses
from services.core.errors import NotFound

from .collections import (
    Collection,
    collection_by_name,
    find_collection,
    list_collections,
    revoke_share,
    share_collection,
)
from .names import SHARED_BY
from .personal import forget_personal_properties

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


@dataclass(frozen=True)
class Grant:
    """One share as its owner and its grantee see it."""

    kind: str
    owner: str
    collection: str  # the name in the owner's home
    grantee: str
    mode: str

    @property
    def mount(self) -> str:
        return f"{self.collection}{SHARED_BY}{self.owner}"


def grant(db: sqlite_utils.Database, owner: str, kind: str, name: str, grantee: str, mode: str) -> Grant:
    """Share the owner's collection with `grantee` ('read' | 'read-write'), or change the mode.

    NotFound (no such collection or user), BadRequest (bad mode, or the owner)."""
    collection = collection_by_name(db, owner, kind, name)
    _require_user(db, grantee)
    share_collection(db, collection.id, grantee, mode)
    return Grant(kind, owner, name, grantee, mode)


def revoke(db: sqlite_utils.Database, owner: str, kind: str, name: str, grantee: str) -> None:
    """Take the share away; it leaves the grantee's home at once. NotFound if there was none."""
    revoke_share(db, collection_by_name(db, owner, kind, name).id, grantee)


def grants(db: sqlite_utils.Database, user: str | None = None) -> list[Grant]:
    """Every share the user gives or receives (everyone's, with no user), by owner, kind, name, grantee."""
    where, args = ("WHERE c.owner = ? OR s.grantee = ?", [user, user]) if user else ("", [])
    return [Grant(*row) for row in db.execute(f"""
        SELECT c.kind, c.owner, c.name, s.grantee, s.mode FROM dav_shares s
        JOIN dav_collections c ON c.id = s.collection_id {where}
        ORDER BY c.owner, c.kind, c.name, s.grantee""", args)]


def _require_user(db, name: str) -> None:
    if db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone() is None:
        raise NotFound(f"no user {name!r}")


def delete_user_collections(db: sqlite_utils.Database, user: dict) -> None:
    """Drop everything a deleted account had in DAV: its collections (items and change logs go with them),
    the shares it was given and its unsent iMIP mail (accounts.USER_DATA_DELETERS; its kept revisions go
    in revisions.py)."""
    db.execute("DELETE FROM dav_shares WHERE grantee = ?", [user["name"]])
    forget_personal_properties(db, user["name"])
    db.execute("DELETE FROM dav_collections WHERE owner = ?", [user["name"]])
    # Invitations by email not sent yet would speak for someone who no longer has an account. Only local
    # users send, by their calendar addresses: mailto:NAME@<mail_domain>, a registered one, or their principal URL.
    name = user["name"].replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    db.execute("DELETE FROM dav_outgoing_mail WHERE lower(sender) LIKE ? ESCAPE '\\' OR sender LIKE ? ESCAPE '\\'",
               [f"mailto:{name}@%", f"%/dav/principals/{name}/"])
    for address in registered_addresses(db, user["name"]):
        db.execute("DELETE FROM dav_outgoing_mail WHERE sender = ?", [f"mailto:{address}"])
