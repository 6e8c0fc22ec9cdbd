"""COPY and MOVE of items between collections of the same kind (RFC 4918 §9.8, §9.9).

The destination validates the bytes like a PUT (its component set, UIDs and
size limit apply); the source's bytes travel unchanged.
"""
from __future__ import annotations

import sqlite_utils

from services.core.errors import BadRequest, Forbidden
from services.core.tree.clock import utcnow

from ..errors import Precondition, PreconditionFailed, namespace_of
from .changes import record_change
from .collections import get_collection
from .conditions import check_conditions
from .items import MAX_RESOURCE_SIZE, Item, delete_item, find_item, get_item, put_item
from .names import check_name


def copy_item(db: sqlite_utils.Database, src: int, name: str, dst: int, dst_name: str, *,
              overwrite: bool = True, max_size: int = MAX_RESOURCE_SIZE) -> tuple[Item, bool]:
    """Copy item `name` of collection `src` to `dst_name` in `dst`; returns (new item, created).

    NotFound, Forbidden (different kinds), PreconditionFailed (destination
    exists and `overwrite` is false: `Overwrite: F`), and whatever put_item
    raises for the destination (a copy within one collection is always a
    no-uid-conflict: one UID, one resource)."""
    item = get_item(db, src, name)
    _check_kinds(db, src, dst)
    _check_overwrite(db, dst, dst_name, overwrite)
    return put_item(db, dst, dst_name, item.raw, max_size=max_size)


def move_item(db: sqlite_utils.Database, src: int, name: str, dst: int, dst_name: str, *,
              overwrite: bool = True, if_match: str | None = None,
              max_size: int = MAX_RESOURCE_SIZE) -> tuple[Item, bool]:
    """Move item `name` of `src` to `dst_name` in `dst`; returns (moved item, created).

    `if_match` applies to the source. Raises like copy_item, plus BadRequest
    when source and destination are the same. Within one collection this is a
    rename: the bytes, UID and ETag stay, sync clients see a delete and a create;
    replacing another item of the same collection is a no-uid-conflict."""
    item = get_item(db, src, name)
    check_name(dst_name, "item name")
    if (src, name) == (dst, dst_name):
        raise BadRequest("source and destination are the same")
    check_conditions(name, item.etag, if_match, False)
    _check_kinds(db, src, dst)
    replaced = _check_overwrite(db, dst, dst_name, overwrite)
    if src != dst:
        moved = put_item(db, dst, dst_name, item.raw, max_size=max_size)
        delete_item(db, src, name, keep_revision=False)  # not lost: it is at the destination now
        return moved
    if replaced:  # two resources of one collection never share a UID (RFC 4791 §5.3.2.1)
        raise Precondition(namespace_of(get_collection(db, dst).kind), "no-uid-conflict",
                           f"{dst_name} holds another UID", href=dst_name)
    record_change(db, src, name, deleted=True)
    seq = record_change(db, src, dst_name, deleted=False)
    db.execute("UPDATE dav_items SET name = ?, seq = ?, modified_at = ? WHERE collection_id = ? AND name = ?",
               [dst_name, seq, utcnow(), src, name])
    return get_item(db, dst, dst_name), True


def _check_kinds(db, src: int, dst: int) -> None:
    source, target = get_collection(db, src), get_collection(db, dst)
    if source.kind != target.kind:
        raise Forbidden(f"cannot put an item of a {source.kind} into a {target.kind}")


def _check_overwrite(db, dst: int, dst_name: str, overwrite: bool) -> bool:
    """Whether something is at the destination; PreconditionFailed if it is and must not be replaced."""
    exists = find_item(db, dst, dst_name) is not None
    if exists and not overwrite:
        raise PreconditionFailed(f"{dst_name} exists and Overwrite is F")
    return exists
