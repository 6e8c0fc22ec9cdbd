"""Modification times a WebDAV client sets: the X-OC-Mtime header on PUT, PROPPATCH of DAV:getlastmodified.

ownCloud and Nextcloud clients, rclone (vendor owncloud or nextcloud) and most
sync tools send a file's own time with its upload as `X-OC-Mtime: <seconds>`
and expect `X-OC-MTime: accepted` back; Windows and `touch` over a mount set
it afterwards with PROPPATCH. The journal keeps it as the file's mtime, exactly
as a sync client's commit does, so every device sees the same date.

The phone apps also send when the file was made, `X-OC-CTime` (iOS: the
photo's capture time, while its X-OC-MTime is when it was last edited), which
Nextcloud answers as nc:creation_time: see creation.py.
"""
from __future__ import annotations

import re
from decimal import Decimal
from email.utils import parsedate_to_datetime

from aiohttp import web

from services.core.errors import BadRequest

from .xmlio import dav

HEADER = "X-OC-Mtime"
ACCEPTED = {"X-OC-MTime": "accepted"}
# Properties whose value, an HTTP date, sets the modification time (Win32LastModifiedTime: Windows' client).
SETS_MTIME = frozenset({dav("getlastmodified"), "{urn:schemas-microsoft-com:}Win32LastModifiedTime"})
_MAX_NS = 2**63 - 1  # the journal stores nanoseconds in a signed 64-bit integer: until the year 2262
_SECONDS = re.compile(r"[0-9]{1,11}(\.[0-9]{1,9})?")


def _checked(ns: int) -> int | None:
    return ns if 0 < ns <= _MAX_NS else None


def header_mtime_ns(request: web.Request, header: str = HEADER) -> int | None:
    """The X-OC-Mtime (or another such `header`) a request carries, in nanoseconds; None without one,
    BadRequest for nonsense. Seconds, whole (Android) or with a fraction (iOS writes a Swift double)."""
    value = request.headers.get(header)
    if value is None:
        return None
    text = value.strip()
    ns = _checked(int(Decimal(text) * 1_000_000_000)) if _SECONDS.fullmatch(text) else None
    if ns is None:
        raise BadRequest(f"{header} must be a positive number of seconds since 1970 (before 2262), "
                         f"not {text[:40]!r}")
    return ns


def property_mtime_ns(text: str | None) -> int | None:
    """The nanoseconds of an HTTP date (RFC 9110 §5.6.7) given as a property's value; None when it is none."""
    try:
        moment = parsedate_to_datetime((text or "").strip())
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # parsedate's "-0000": no zone said, so no instant
        return None
    return _checked(int(Decimal(str(moment.timestamp())) * 1_000_000_000))
