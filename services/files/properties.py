"""Dead properties (PROPPATCH): any XML a client sets, kept per (folder, path) in files_properties.

Values are stored as the serialised property element, so namespaces, xml:lang
and nested markup come back as they were given. Storage only: no HTTP.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import sqlite_utils


def dead_properties(db: sqlite_utils.Database, folder: int, path: str) -> dict[str, ET.Element]:
    """Clark name -> the stored element."""
    rows = db.execute("SELECT name, value FROM files_properties WHERE folder_id = ? AND path = ?",
                      [folder, path])
    return {name: ET.fromstring(value) for name, value in rows}


def set_property(db: sqlite_utils.Database, folder: int, path: str, prop: ET.Element) -> None:
    value = ET.tostring(prop, encoding="unicode")
    db.execute("""INSERT INTO files_properties (folder_id, path, name, value) VALUES (?, ?, ?, ?)
                  ON CONFLICT (folder_id, path, name) DO UPDATE SET value = excluded.value""",
               [folder, path, prop.tag, value])


def remove_property(db: sqlite_utils.Database, folder: int, path: str, name: str) -> None:
    db.execute("DELETE FROM files_properties WHERE folder_id = ? AND path = ? AND name = ?",
               [folder, path, name])


def _below(path: str) -> tuple[str, list]:
    if path == "":
        return "1", []
    return "(path = ? OR substr(path, 1, ?) = ?)", [path, len(path) + 1, path + "/"]


def drop_properties(db: sqlite_utils.Database, folder: int, path: str) -> None:
    """Forget the properties of `path` and everything below it (deleted, or a new resource takes the name)."""
    where, args = _below(path)
    db.execute(f"DELETE FROM files_properties WHERE folder_id = ? AND {where}", [folder, *args])


def copy_properties(db: sqlite_utils.Database, src_folder: int, src: str, dst_folder: int, dst: str) -> None:
    """Give dst (and what lies below it) the properties of src and its members, replacing dst's."""
    drop_properties(db, dst_folder, dst)
    where, args = _below(src)
    rows = list(db.execute(f"SELECT path, name, value FROM files_properties WHERE folder_id = ? AND {where}",
                           [src_folder, *args]))
    for path, name, value in rows:
        new_path = dst + path[len(src):] if src else (f"{dst}/{path}" if path else dst)
        db.execute("INSERT INTO files_properties (folder_id, path, name, value) VALUES (?, ?, ?, ?)",
                   [dst_folder, new_path, name, value])
