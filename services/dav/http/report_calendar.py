"""calendar-query (RFC 4791 §7.8) and free-busy-query (§7.10).

Candidates come from the store's time-range index when the filter has a range,
and only candidates are parsed. A plain "events overlapping this range" query
does not parse at all an item that is not recurring and whose indexed bounds
lie inside the range: the index already proves it overlaps, and its bytes go
back as stored. Nor, for a range with a start and no end, an item whose rules
never end (it has an instance after any start) or an event whose last
instance surely ends after the start, nor, for a range with an end and no
start, an event whose first instance is surely before the end. Any other
event whose instances stored at PUT (instancerows.py) cover the range is
decided from them, exactly, in the query's time zone: a month on screen
parses nothing.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import datetime, tzinfo

from aiohttp import web

from services.core.errors import BadRequest
from services.core.http import DATABASE
from services.core.multistatus import xml_bytes_response

from ..errors import CALDAV, Precondition
from ..instancerows import covers, overlaps, row_span
from ..query.caldata import CalendarData, parse_calendar_data, render_calendar_data
from ..query.calfilter import CompFilter, matches, parse_filter
from ..query.freebusy import busy_periods, render_freebusy
from ..query.instances import UNREADABLE
from ..query.parsing import VTIMEZONE, cached_for_query, read_for_query
from ..query.timerange import TimeRange, parse_time_range, timezone_of
from ..store import Item, find_item, items_in_range
from ..store.instances import stored_instances
from ..timebounds import FLOATING_SLACK
from ..store.queries import collection_items
from .paths import Target
from .report_output import collection_target, item_response, multistatus_body, snapshot, wanted_props
from .resources import load
from .xmlio import tag


UNFOLD = re.compile(rb"\r?\n[ \t]")
RULE_LINE = re.compile(rb"^RRULE[;:].*$", re.M | re.I)
IRREGULAR_INSTANCES = re.compile(rb"^(EXDATE|RECURRENCE-ID)[;:]", re.M | re.I)


async def calendar_query(request: web.Request, target: Target, user: str, body: ET.Element) -> web.Response:
    flt = parse_filter(body.find(tag(CALDAV, "filter")))
    wanted = wanted_props(body)
    data = parse_calendar_data(wanted.data) if wanted.data is not None else CalendarData()
    zone_node = body.find(tag(CALDAV, "timezone"))
    request_zone = zone_node.text if zone_node is not None else None

    def answer(db) -> bytes:
        resource = load(db, target, user, "read")
        collection = resource.collection
        tz = timezone_of(request_zone or collection.timezone)
        responses, base = [], collection_target(target)
        for item, calendar in _matching(db, resource, flt, data, tz):
            def render(item: Item, calendar=calendar) -> str:
                return render_calendar_data(item.raw, data, calendar, tz)
            responses.append(item_response(base, collection, item, user, wanted, render))
        return multistatus_body(responses)

    return xml_bytes_response(await request.app[DATABASE].read(snapshot(answer)))


def _matching(db, resource, flt: CompFilter, data: CalendarData, tz: tzinfo | None):
    """(item, its parse or None) for every item the filter matches, in name order."""
    kind, rng = flt.index_hint
    plain = flt.plain_time_range
    collection_id = resource.collection.id
    if resource.item is not None:
        candidates = [find_item(db, collection_id, resource.item.name, with_raw=True)]
    elif rng is not None:
        candidates = items_in_range(db, collection_id, _epoch(rng.start), _epoch(rng.end, ceil=True))
    else:
        candidates = collection_items(db, collection_id, kind)
    candidates = [item for item in candidates if kind is None or item.component == kind]
    proven = plain is not None and data.verbatim
    proofs = {item.name: proven and any(proof(item, *plain) for proof in INDEX_PROOFS) for item in candidates}
    decided = _decided_by_instances(db, collection_id, [item for item in candidates if not proofs[item.name]],
                                    plain, tz) if proven else {}
    for item in candidates:
        if proofs[item.name] or decided.get(item.name):
            yield item, None
            continue
        if item.name in decided:
            continue  # no stored instance overlaps, and every one that could is stored
        try:
            matched = matches(cached_for_query(item.etag, item.raw), flt, tz)
        except UNREADABLE:
            continue  # stored objects were validated at PUT; one that cannot be read now matches nothing
        if matched:  # expansion changes what it reads: it gets a parse of its own (VTIMEZONEs go anyway)
            yield item, read_for_query(item.raw) if data.expand is not None else None


def _inside(item: Item, kind: str, rng: TimeRange) -> bool:
    """Whether the index alone proves a non-recurring `kind` item overlaps `rng`: its bounds (a
    superset of its real span) lie within it, ending strictly before the range's end."""
    if kind != "VEVENT" or item.component != kind or item.first_start is None or item.last_end is None:
        return False
    if item.last_end <= item.first_start or b"RRULE" in item.raw or b"RDATE" in item.raw:
        return False
    return ((rng.start is None or item.first_start >= rng.start.timestamp())
            and (rng.end is None or item.last_end < rng.end.timestamp()))


def _endless_since(item: Item, kind: str, rng: TimeRange) -> bool:
    """Whether a start-only range surely holds an instance of the item: its rules never end, so some
    instance starts after any moment, and one that starts at or after the range's start overlaps it
    (RFC 4791 §9.9, every row for a component with a DTSTART). Finitely many EXDATEs and overrides
    cannot take away all of them. Read from the bytes: nothing is parsed."""
    if rng.end is not None or item.component != kind or item.last_end is not None:
        return False
    rules = RULE_LINE.findall(VTIMEZONE.sub(b"", UNFOLD.sub(b"", item.raw)))  # a zone's rules are not the item's
    return bool(rules) and not any(b"COUNT=" in rule or b"UNTIL=" in rule for rule in rules) \
        and b"THISANDFUTURE" not in item.raw


def _first_before_end(item: Item, kind: str, rng: TimeRange) -> bool:
    """Whether an end-only range surely holds the item's first instance: with no EXDATE and no override,
    the event's DTSTART (or an earlier RDATE) is an instance, the index's first start is its start, and
    an event that starts before the end overlaps a range with no start (RFC 4791 §9.9). Floating and
    all-day starts can be off by the widest UTC offsets either way, so those stay for the exact test."""
    if rng.start is not None or kind != "VEVENT" or item.component != kind or item.first_start is None:
        return False
    if item.first_start + 2 * FLOATING_SLACK.total_seconds() >= rng.end.timestamp():
        return False
    return IRREGULAR_INSTANCES.search(item.raw) is None


def _last_after_start(item: Item, kind: str, rng: TimeRange) -> bool:
    """Whether a start-only range surely holds the event's last instance: the index's last end is the
    latest end of the instances themselves (EXDATEs and overrides applied when it was written), and an
    event that ends after the start overlaps a range with no end. Floating ends as in _first_before_end."""
    if rng.end is not None or kind != "VEVENT" or item.component != kind or item.last_end is None:
        return False
    return item.last_end - 2 * FLOATING_SLACK.total_seconds() > rng.start.timestamp()


INDEX_PROOFS = (_inside, _endless_since, _first_before_end, _last_after_start)


def _decided_by_instances(db, collection_id: int, candidates: list[Item], plain: tuple[str, TimeRange],
                          tz: tzinfo | None) -> dict[str, bool]:
    """Whether each event among `candidates` overlaps the range, from its instances stored at PUT, for
    those whose stored instances are those of its bytes and cover the range; nothing is parsed."""
    kind, rng = plain
    etags = {item.name: item.etag for item in candidates if kind == "VEVENT" == item.component}
    if not etags:
        return {}
    stored = stored_instances(db, collection_id, etags, *row_span(rng)[::-1])
    return {name: any(overlaps(row, rng, tz) for row in found.rows) for name, found in stored.items()
            if covers(found.covered_from, found.covered_until, rng)}


def _epoch(moment: datetime | None, ceil: bool = False) -> int | None:
    if moment is None:
        return None
    seconds = moment.timestamp()
    return int(seconds) + (1 if ceil and seconds != int(seconds) else 0)


async def free_busy_query(request: web.Request, target: Target, user: str, body: ET.Element) -> web.Response:
    node = body.find(tag(CALDAV, "time-range"))
    if node is None:
        raise BadRequest("free-busy-query needs a CALDAV:time-range")
    rng = parse_time_range(node)
    if rng.start is None or rng.end is None:
        raise Precondition(CALDAV, "valid-filter", "free-busy-query needs a time-range with start and end",
                           status=400)

    def answer(db) -> bytes:
        resource = load(db, target, user, "read")
        tz = timezone_of(resource.collection.timezone)
        items = items_in_range(db, resource.collection.id, _epoch(rng.start), _epoch(rng.end, ceil=True))
        periods = busy_periods((i.raw for i in items if i.component == "VEVENT"), rng.start, rng.end, tz)
        return render_freebusy(periods, rng.start, rng.end)

    return web.Response(body=await request.app[DATABASE].read(snapshot(answer)),
                        content_type="text/calendar", charset="utf-8")
