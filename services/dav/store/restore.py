"""Bring a kept revision back, as a new change that sync clients see like any PUT.

The bytes go back through put_item, so the change log, sync tokens, UID
checks and the revision keeping of an overwrite all apply. Where it lands:
- its collection, found by id, else by owner, kind and name, else recreated
  with its old name, kind and display name;
- the item that now holds its UID, if any: that is the same object, and the
  restore makes the old content its current version again (the version it
  replaces is kept as a revision, so a restore can itself be undone);
- otherwise its old name, or, when an object with another UID took that
  name meanwhile, a new name next to it: a restore never replaces a
  different object.
"""
from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from services.core.errors import Conflict

from ..errors import Precondition
from .collections import Collection, create_collection, find_collection, get_collection
from .items import Item, find_item, put_item
from .names import MAX_NAME
from .revisions import Revision, get_revision

CREATED, REPLACED, UNCHANGED = "created", "replaced", "unchanged"


@dataclass(frozen=True)
class Restored:
    revision: Revision
    collection: Collection
    item: Item
    outcome: str  # CREATED (a new item), REPLACED (the object's current version), UNCHANGED (already current)
    collection_recreated: bool


def restore_revision(db: sqlite_utils.Database, owner: str, revision_id: int) -> Restored:
    """Make revision `revision_id` of `owner` current again; returns where it went.

    NotFound (no such revision of theirs), Conflict when the collection it
    goes back to refuses it (e.g. a calendar recreated for tasks only)."""
    revision = get_revision(db, owner, revision_id)
    collection, recreated = _collection_for(db, revision)
    holder = db.execute("SELECT name, etag FROM dav_items WHERE collection_id = ? AND uid = ?",
                        [collection.id, revision.uid]).fetchone()
    if holder is not None:
        name, outcome = holder[0], UNCHANGED if holder[1] == revision.etag else REPLACED
    else:
        name, outcome = _free_name(db, collection.id, revision), CREATED
    try:
        item, _ = put_item(db, collection.id, name, revision.raw)
    except Precondition as error:  # not a DAV request: say why in words, as a plain conflict
        raise Conflict(f"revision {revision.id} cannot go back into {collection.kind} "
                       f"{collection.name!r}: {error.reason}") from None
    return Restored(revision, collection, item, outcome, recreated)


def _collection_for(db, revision: Revision) -> tuple[Collection, bool]:
    """The collection the revision returns to, and whether it had to be recreated."""
    alive = db.execute("SELECT 1 FROM dav_collections WHERE id = ?", [revision.collection_id]).fetchone()
    if alive:
        return get_collection(db, revision.collection_id), False
    same_name = find_collection(db, revision.owner, revision.kind, revision.collection_name)
    if same_name is not None:
        return same_name, False
    return create_collection(db, revision.owner, revision.kind, revision.collection_name,
                             displayname=revision.collection_displayname), True


def _free_name(db, collection_id: int, revision: Revision) -> str:
    """The revision's old name if it is free, else `<stem>-restored-<id>[-N].<ext>`."""
    if find_item(db, collection_id, revision.name) is None:
        return revision.name
    stem, dot, extension = revision.name.rpartition(".")
    if not stem:
        stem, dot, extension = revision.name, "", ""
    for attempt in range(1, 1000):
        suffix = f"-restored-{revision.id}" + (f"-{attempt}" if attempt > 1 else "")
        room = max(1, MAX_NAME - len(suffix) - len(dot) - len(extension))  # stay within the name limit
        candidate = f"{stem[:room]}{suffix}{dot}{extension}"
        if find_item(db, collection_id, candidate) is None:
            return candidate
    raise Conflict(f"no free name for revision {revision.id} in its collection")
