"""Reading stored calendar objects for queries, faster than a plain parse when it is safe.

Most of the time spent reading a typical recurring event goes into its
VTIMEZONE blocks. When every VTIMEZONE a object carries is named by an IANA
zone id (Europe/Berlin, …), the query reads the object without them and
icalendar resolves the TZIDs from the system's zone database: the same zone,
with rules at least as current as the client's copy. Objects with other zone
names (Outlook's "W. Europe Standard Time", custom ones) are read whole.

Clients ask for the same ranges again and again (the month on screen), so
the parses of recently queried objects are kept, keyed by their ETag (a hash
of their bytes): `cached_for_query` hands out a shared Calendar that callers
must only read; expansion and partial retrieval take their own parse.
"""
from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache

import icalendar

VTIMEZONE = re.compile(rb"BEGIN:VTIMEZONE\r?\n.*?END:VTIMEZONE\r?\n", re.S)
TZID = re.compile(rb"^TZID:(.+?)\r?$", re.M)


@lru_cache(maxsize=1)
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


PARSES_KEPT = 2048  # a few MB of parsed objects: a month or two of a busy calendar


@lru_cache(maxsize=PARSES_KEPT)
def cached_for_query(etag: str, raw: bytes) -> icalendar.Calendar:
    """read_for_query of a stored item, shared between requests: read it, never change it."""
    return read_for_query(raw)


def read_for_query(raw: bytes) -> icalendar.Calendar:
    """The object as a Calendar, for filters, expansion and free-busy (not for returning its text as is)."""
    if b"BEGIN:VTIMEZONE" in raw:
        blocks = VTIMEZONE.findall(raw)
        names = [match.decode("utf-8", "replace").strip() for block in blocks for match in TZID.findall(block)]
        if len(names) == len(blocks) and all(name in _known_zones() for name in names):
            raw = VTIMEZONE.sub(b"", raw)
    return icalendar.Calendar.from_ical(raw)
