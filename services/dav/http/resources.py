"""Loading what a Target names from the store (NotFound when it is not there)."""
from __future__ import annotations

import sqlite_utils

from services.core.errors import NotFound

from ..store import collection_by_name, find_item, list_collections, list_items

from .paths import COLLECTION, HOME, ITEM, Target
from .properties import Resource


def load(db: sqlite_utils.Database, target: Target) -> Resource:
    """The resource at `target`, with its collection and item metadata (no item bytes)."""
    if target.level not in (COLLECTION, ITEM):
        return Resource(target)
    collection = collection_by_name(db, target.user, target.kind, target.collection)
    if target.level == COLLECTION:
        return Resource(target, collection)
    item = find_item(db, collection.id, target.item)
    if item is None:
        raise NotFound(f"no item {target.item!r} in {target.collection!r}")
    return Resource(target, collection, item)


def children(db: sqlite_utils.Database, resource: Resource) -> list[Resource]:
    """The members a Depth: 1 PROPFIND lists: a home's collections, a collection's items."""
    target = resource.target
    if target.level == HOME:
        return [Resource(target.child(c.name, COLLECTION), c)
                for c in list_collections(db, target.user, target.kind) if c.owner == target.user]
    if target.level == COLLECTION:
        return [Resource(target.child(i.name, ITEM), resource.collection, i)
                for i in list_items(db, resource.collection.id)]
    return []
