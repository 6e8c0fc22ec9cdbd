"""Reads the REPORTs need beyond items.py: a page of the change log, and items by name without bodies.

sync-collection with a DAV:limit pages through the change log in sequence
order: a page of N changes ends with a token at the last change it returned,
so the next request continues exactly there (RFC 6578 §3.6).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import sqlite_utils

from services.core.errors import NotFound

from .changes import Changes, sync_token, token_seq
from .items import COLUMNS, Item


@dataclass(frozen=True)
class ChangePage(Changes):
    truncated: bool = False  # more changes remain after `token`


def changes_page(db: sqlite_utils.Database, collection_id: int, token: str | None,
                 limit: int | None) -> ChangePage:
    """Like changes_since, in change order and at most `limit` names; `truncated` says whether more remain.

    An initial sync (no token) lists live items only; later ones also the
    deleted. Raises NotFound and Precondition DAV:valid-sync-token like
    changes_since."""
    row = db.execute("SELECT seq FROM dav_collections WHERE id = ?", [collection_id]).fetchone()
    if row is None:
        raise NotFound(f"no collection {collection_id}")
    current = row[0]
    since = token_seq(token, collection_id, current) if token else 0
    live_only = "" if token else " AND deleted = 0"
    sql = (f"SELECT seq, name, deleted FROM dav_changes WHERE collection_id = ? AND seq > ?{live_only} "
           "ORDER BY seq")
    params: list = [collection_id, since]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit + 1)
    rows = db.execute(sql, params).fetchall()
    truncated = limit is not None and len(rows) > limit
    if truncated:
        rows = rows[:limit]
    changed = [name for _, name, gone in rows if not gone]
    deleted = [name for _, name, gone in rows if gone]
    upto = rows[-1][0] if truncated else current
    return ChangePage(changed, deleted, sync_token(collection_id, upto), truncated)


def items_named(db: sqlite_utils.Database, collection_id: int, names: Iterable[str], *,
                with_raw: bool) -> dict[str, Item]:
    """Those of `names` that exist, with their bytes only if asked; missing names are absent.

    Rows are read as tuples in COLUMNS order (Item's field order): an initial sync reads them all."""
    names = list(dict.fromkeys(names))
    select = f"SELECT {COLUMNS}{', raw' if with_raw else ''} FROM dav_items WHERE collection_id = ?"
    if len(names) > 200:  # most of the collection: one scan beats hundreds of lookups
        wanted = set(names)
        return {row[1]: Item(*row) for row in db.execute(select, [collection_id]) if row[1] in wanted}
    found: dict[str, Item] = {}
    for start in range(0, len(names), 100):
        batch = names[start:start + 100]
        rows = db.execute(f"{select} AND name IN ({','.join('?' * len(batch))})", [collection_id, *batch])
        found.update((row[1], Item(*row)) for row in rows)
    return found


def collection_items(db: sqlite_utils.Database, collection_id: int, component: str | None = None) -> list[Item]:
    """Every item with its bytes, only those of one component type if given (queries without a time range)."""
    if component is None:
        rows = db.execute(f"SELECT {COLUMNS}, raw FROM dav_items WHERE collection_id = ? ORDER BY name",
                          [collection_id])
    else:
        rows = db.execute(f"SELECT {COLUMNS}, raw FROM dav_items WHERE collection_id = ? AND component = ? "
                          "ORDER BY name", [collection_id, component])
    return [Item(*row) for row in rows]
