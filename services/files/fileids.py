"""The file id a Nextcloud client reads: the OC-FileId header of an upload's answer, the same value as
the PROPFIND oc:id of that file (the client stores one and compares it with the other)."""
from __future__ import annotations

import sqlite_utils

# Nextcloud's form: the decimal id padded to 8 digits, then the installation's id ("oc" + 10 characters).
INSTANCE = "ochearthhome"


def oc_id(number: int) -> str:
    return f"{number:08d}{INSTANCE}"


def file_id(db: sqlite_utils.Database, folder: int, path: str) -> str:
    """The oc:id of the live entry at `path`."""
    row = db.execute("SELECT id FROM entries WHERE folder_id = ? AND path = ?", [folder, path]).fetchone()
    return oc_id(row[0])
