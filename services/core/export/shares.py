"""`shares.json`: what the user shares, with whom and how, what others share with them, their links.

Folder modes are the sync API's ('ro' | 'rw'); calendar and address book modes
are DAV's ('read' | 'read-write'). A shared collection is listed with the name
it has in the grantee's DAV home (`<name>_shared_by_<owner>`).
"""
from __future__ import annotations

from typing import Any

import sqlite_utils

SHARED_BY = "_shared_by_"  # the DAV mount-name marker (services/dav/store/names.py)


def shares_of(db: sqlite_utils.Database, user: str) -> dict[str, Any]:
    """Shares given and received, folders and DAV collections, in a stable order."""
    return {
        "links": _links(db, user),
        "folders": {
            "given": [{"folder": r[0], "grantee": r[1], "mode": r[2]} for r in db.execute("""
                SELECT f.name, s.grantee, s.mode FROM folder_shares s JOIN folders f ON f.id = s.folder_id
                WHERE f.owner = ? AND f.deleted_at IS NULL ORDER BY f.name, s.grantee""", [user])],
            "received": [{"owner": r[0], "folder": r[1], "mode": r[2]} for r in db.execute("""
                SELECT f.owner, f.name, s.mode FROM folder_shares s JOIN folders f ON f.id = s.folder_id
                WHERE s.grantee = ? AND f.deleted_at IS NULL ORDER BY f.owner, f.name""", [user])],
        },
        "collections": {
            "given": [{"kind": r[0], "collection": r[1], "grantee": r[2], "mode": r[3]} for r in db.execute("""
                SELECT c.kind, c.name, s.grantee, s.mode FROM dav_shares s
                JOIN dav_collections c ON c.id = s.collection_id
                WHERE c.owner = ? ORDER BY c.kind, c.name, s.grantee""", [user])],
            "received": [{"kind": r[0], "owner": r[1], "collection": r[2], "mode": r[3],
                          "mounted_as": f"{r[2]}{SHARED_BY}{r[1]}"} for r in db.execute("""
                SELECT c.kind, c.owner, c.name, s.mode FROM dav_shares s
                JOIN dav_collections c ON c.id = s.collection_id
                WHERE s.grantee = ? ORDER BY c.kind, c.owner, c.name""", [user])],
        },
    }


def _links(db: sqlite_utils.Database, user: str) -> list[dict[str, Any]]:
    """The user's public share links: the start of their URL (the token is stored only hashed, so the
    full URL exists only where the owner put it); the password is only stored hashed and stays out. Empty on a
    database without share links."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'share_links'").fetchone() is None:
        return []
    return [{"url_start": f"/s/{r['token_prefix']}…", "folder": r["folder"], "path": r["path"], "is_dir": bool(r["is_dir"]),
             "mode": r["mode"], "label": r["label"], "has_password": r["password_hash"] is not None,
             "expires_at": r["expires_at"], "downloads": r["downloads"], "created_at": r["created_at"],
             "revoked_at": r["revoked_at"]}
            for r in db.query("""
                SELECT l.*, f.name AS folder FROM share_links l JOIN folders f ON f.id = l.folder_id
                WHERE l.owner = ? ORDER BY l.id""", [user])]
