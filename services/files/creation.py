"""When a file was made and when it was uploaded, as the Nextcloud apps read them: nc:creation_time and
nc:upload_time, in seconds since 1970.

The iOS app sends a photo's capture time as `X-OC-CTime` and its last edit as
`X-OC-MTime` (nextcloud/ios NCCameraRoll: creationDate and modificationDate of
the asset); Android sends the file's creation time as `X-OC-Ctime`. Both apps
read nc:creation_time back into their file records (NextcloudKit
NKDataFileXML, android-library WebdavEntry), so the capture time survives an
edit that moved the modification time on.

The creation time is kept like any other property of the file (files_properties,
written in the same transaction as the journal commit), so it follows the file
when it is renamed, moved or copied, goes when it is deleted, and a later upload
without the header keeps it. The upload time is the journal's own: when the
current revision was committed.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET

import sqlite_utils
from aiohttp import web

from .mtimes import header_mtime_ns
from .ncspaces import unix_seconds
from .properties import set_property
from .xmlio import NC

CREATION_TIME = f"{{{NC}}}creation_time"
UPLOAD_TIME = f"{{{NC}}}upload_time"
HEADER = "X-OC-CTime"  # matched in any case: Android writes X-OC-Ctime


def header_ctime_ns(request: web.Request) -> int | None:
    """The X-OC-CTime a request carries, in nanoseconds; None without one, BadRequest for nonsense."""
    return header_mtime_ns(request, HEADER)


def keep(db: sqlite_utils.Database, folder: int, path: str, ctime_ns: int) -> None:
    """Record the creation time the client sent with the file at `path` (whole seconds, as Nextcloud)."""
    element = ET.Element(CREATION_TIME)
    element.text = str(ctime_ns // 1_000_000_000)
    set_property(db, folder, path, element)


def upload_time(resource) -> str | None:
    """nc:upload_time of a file: when its current content was committed; None for a directory."""
    if resource.is_collection or not resource.modified_at:
        return None
    return str(unix_seconds(resource.modified_at))
