"""Loading what a Target names from the store, as the asking user may see it.

`load` is the one door: it resolves shared collections (mounted in the
grantee's home or reached at the owner's URL), checks the privilege the
method needs, and raises NeedPrivileges or NotFound.
"""
from __future__ import annotations

import sqlite_utils

from services.core.errors import NotFound

from ..store import Collection, find_item, list_items
from ..store.sharing import mounted, visible_collection
from .access import NeedPrivileges, require
from .paths import COLLECTION, HOME, ITEM, NOTIFICATIONS, PRINCIPAL, PRINCIPALS, ROOT, Target
from .properties import Resource


def load(db: sqlite_utils.Database, target: Target, user: str, privilege: str) -> Resource:
    """The resource at `target` with its collection and item metadata (no item bytes)."""
    if target.level == ROOT or (target.level in (PRINCIPALS, PRINCIPAL) and privilege == "read"):
        return Resource(target)
    if target.level == PRINCIPALS:
        raise NeedPrivileges(target.path, privilege)
    if target.level in (PRINCIPAL, HOME, NOTIFICATIONS):
        require("owner" if target.user == user else None, privilege, target.path)
        return Resource(target)
    collection = collection_of(db, target, user, privilege)
    if target.level == COLLECTION:
        return Resource(target, collection)
    item = find_item(db, collection.id, target.item)
    if item is None:
        raise NotFound(f"no item {target.item!r} in {target.collection!r}")
    return Resource(target, collection, item)


def collection_of(db: sqlite_utils.Database, target: Target, user: str, privilege: str) -> Collection:
    """The collection a collection or item target lies in, if `user` holds `privilege` on it.

    Someone else's collection that is missing or not shared is NeedPrivileges,
    one's own missing collection NotFound."""
    collection = visible_collection(db, user, target.user, target.kind, target.collection)
    if collection is None:
        if target.user != user:
            raise NeedPrivileges(target.path, privilege)
        raise NotFound(f"no {target.kind} {target.collection!r}")
    require(collection.access, privilege, target.path)
    return collection


def children(db: sqlite_utils.Database, resource: Resource) -> list[Resource]:
    """The members a Depth: 1 PROPFIND lists: the household's principals (whom a principal search finds
    anyway), a home's collections (shared ones mounted), a collection's items."""
    target = resource.target
    if target.level == PRINCIPALS:
        return [Resource(Target(PRINCIPAL, name)) for name in member_names(db)]
    if target.level == HOME:
        return [Resource(target.child(name, COLLECTION), c) for name, c in mounted(db, target.user, target.kind)]
    if target.level == COLLECTION:
        return [Resource(target.child(i.name, ITEM), resource.collection, i)
                for i in list_items(db, resource.collection.id)]
    return []


def member_names(db: sqlite_utils.Database) -> list[str]:
    """Every household member by user name: the principals /dav/principals/ holds."""
    return [name for name, in db.execute("SELECT name FROM users ORDER BY name")]
