"""A user's calendars as `calendars/<name>.ics` and address books as `contacts/<name>.vcf`.

One iCalendar stream per calendar, as Nextcloud exports them and as every
calendar app imports them: one VCALENDAR holding the components of every
stored object, each VTIMEZONE once (by TZID). The components' content lines
are copied as stored, only line ends become CRLF (RFC 5545 §3.1); the stored
objects' own VERSION/PRODID/METHOD lines give way to one header naming the
calendar. An address book is its cards concatenated, bytes as stored.

The rows are read with SQL rather than through services.dav.store: core code
does not import a daemon's modules, and this is a plain read of two tables.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator

import sqlite_utils
from icalendar import Calendar

from .target import Target, disk_name

PRODID = "-//hearth//export//EN"
_TZID = re.compile(rb"^TZID[;:]", re.IGNORECASE)


@dataclass
class DavCounts:
    calendars: int = 0
    calendar_objects: int = 0
    address_books: int = 0
    cards: int = 0


def export_dav(db: sqlite_utils.Database, owner: str, target: Target) -> DavCounts:
    """Write every calendar and address book `owner` owns (shared ones are theirs to export)."""
    counts = DavCounts()
    collections = list(db.query("""SELECT id, kind, name, displayname, description FROM dav_collections
                                   WHERE owner = ? ORDER BY kind, name""", [owner]))
    for collection in collections:
        raws = [row[0] for row in db.execute(
            "SELECT raw FROM dav_items WHERE collection_id = ? ORDER BY name", [collection["id"]])]
        if collection["kind"] == "calendar":
            target.write(f"calendars/{disk_name(collection['name'])}.ics", _calendar(collection, raws))
            counts.calendars += 1
            counts.calendar_objects += len(raws)
        else:
            target.write(f"contacts/{disk_name(collection['name'])}.vcf", _address_book(raws))
            counts.address_books += 1
            counts.cards += len(raws)
    return counts


def _calendar(collection: dict, raws: list[bytes]) -> Iterator[bytes]:
    header = Calendar()
    header.add("version", "2.0")
    header.add("prodid", PRODID)
    if collection["displayname"]:
        header.add("x-wr-calname", collection["displayname"])
    if collection["description"]:
        header.add("x-wr-caldesc", collection["description"])
    opening = header.to_ical()
    closing = b"END:VCALENDAR\r\n"
    yield opening[:-len(closing)]
    timezones: set[bytes] = set()
    for raw in raws:
        for name, block in components(raw):
            if name == b"VTIMEZONE":
                tzid = _tzid(block)
                if tzid in timezones:
                    continue
                timezones.add(tzid)
            yield block
    yield closing


def components(raw: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(NAME, content lines) of each component directly inside a stored VCALENDAR, lines kept as
    stored with CRLF ends. Folded lines start with a space or tab, so they never look like BEGIN/END."""
    depth, name, block = 0, b"", []
    for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
        upper = line.upper()
        if upper.startswith(b"BEGIN:"):
            depth += 1
            if depth == 2:
                name, block = upper[6:].strip(), []
        if depth >= 2:
            block.append(line)
        if upper.startswith(b"END:"):
            if depth == 2:
                yield name, b"\r\n".join(block) + b"\r\n"
            depth -= 1


def _tzid(block: bytes) -> bytes:
    for line in block.split(b"\r\n"):
        if _TZID.match(line):
            return line.partition(b":")[2].strip()
    return block  # no TZID (invalid, but stored): keep each distinct one


def _address_book(raws: list[bytes]) -> Iterator[bytes]:
    for raw in raws:
        yield raw if raw.endswith(b"\n") else raw + b"\r\n"
