"""POST to the schedule outbox: free-busy requests (RFC 6638 §5, CalDAV scheduling's VFREEBUSY REQUEST).

The body is a VCALENDAR with METHOD:REQUEST and one VFREEBUSY naming the
range (DTSTART/DTEND), the ORGANIZER (one of the poster's own addresses) and
one ATTENDEE per calendar user asked about. The answer is a
CALDAV:schedule-response with one response per recipient: a local user's
busy time from their calendars (not the inbox or outbox), 3.7 for anyone else.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import icalendar
import sqlite_utils
from aiohttp import web

from services.core.errors import BadRequest, Forbidden
from services.core.http import CONFIG, DATABASE
from services.core.multistatus import xml_response

from ..errors import CALDAV, Precondition
from ..http.paths import COLLECTION, Target
from ..http.xmlio import element, href, tag
from ..query.freebusy import busy_periods, render_freebusy
from ..store import CALENDAR, items_in_range
from .addresses import Settings, local_user, normalize
from .mailboxes import OUTBOX, calendars

MAX_BODY = 256 * 1024
MAX_RECIPIENTS = 100


def is_outbox(target: Target) -> bool:
    return target.level == COLLECTION and target.kind == CALENDAR and target.collection == OUTBOX


async def post(request: web.Request, target: Target, user: str) -> web.Response:
    """Answer a VFREEBUSY REQUEST posted to the user's own outbox."""
    if target.user != user:
        raise Forbidden(f"only {target.user} may post to {target.path}")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise Precondition(CALDAV, "max-resource-size", f"more than {MAX_BODY} bytes")
    request_data = _freebusy_request(body)
    settings = Settings.from_config(request.app[CONFIG].dav)

    def answer(db):
        if local_user(db, request_data["organizer"], settings) != user:
            raise Precondition(CALDAV, "organizer-allowed", "the ORGANIZER must be one of your addresses")
        return [_response(db, settings, recipient, request_data) for recipient in request_data["attendees"]]

    responses = await request.app[DATABASE].read(answer)
    return xml_response(element(tag(CALDAV, "schedule-response"), children=responses))


def _freebusy_request(body: bytes) -> dict:
    try:
        calendar = icalendar.Calendar.from_ical(body)
    except ValueError as error:
        raise Precondition(CALDAV, "valid-calendar-data", f"not iCalendar: {error}") from None
    if str(calendar.get("METHOD", "")).upper() != "REQUEST":
        raise Precondition(CALDAV, "valid-scheduling-message", "the outbox takes METHOD:REQUEST free-busy queries")
    queries = calendar.walk("VFREEBUSY")
    if len(queries) != 1:
        raise Precondition(CALDAV, "valid-scheduling-message", "exactly one VFREEBUSY is expected")
    query = queries[0]
    start, end = _utc(query.get("DTSTART")), _utc(query.get("DTEND"))
    if start is None or end is None or end <= start:
        raise BadRequest("a free-busy request needs DTSTART before DTEND")
    attendees = query.get("ATTENDEE", [])
    attendees = attendees if isinstance(attendees, list) else [attendees]
    if not attendees or len(attendees) > MAX_RECIPIENTS:
        raise Precondition(CALDAV, "valid-scheduling-message", f"1 to {MAX_RECIPIENTS} ATTENDEEs are expected")
    organizer = query.get("ORGANIZER")
    if organizer is None:
        raise Precondition(CALDAV, "organizer-allowed", "the VFREEBUSY has no ORGANIZER")
    return {"start": start, "end": end, "uid": str(query.get("UID", "")) or None,
            "organizer": str(organizer), "attendees": [str(a) for a in attendees]}


def _response(db: sqlite_utils.Database, settings: Settings, recipient: str, request_data: dict):
    user = local_user(db, recipient, settings)
    children = [element(tag(CALDAV, "recipient"), children=[href(recipient)])]
    if user is None:
        children.append(element(tag(CALDAV, "request-status"), "3.7;Invalid calendar user"))
        return element(tag(CALDAV, "response"), children=children)
    start, end = request_data["start"], request_data["end"]
    raw_items = [item.raw for collection in calendars(db, user)
                 for item in items_in_range(db, collection.id, int(start.timestamp()), int(end.timestamp()))]
    periods = busy_periods(raw_items, start, end)
    data = render_freebusy(periods, start, end, uid=request_data["uid"], organizer=request_data["organizer"],
                           attendee=normalize(recipient) if recipient.lower().startswith("mailto:") else recipient)
    children.append(element(tag(CALDAV, "request-status"), "2.0;Success"))
    children.append(element(tag(CALDAV, "calendar-data"), data.decode("utf-8")))
    return element(tag(CALDAV, "response"), children=children)


def _utc(prop) -> datetime | None:
    if prop is None:
        return None
    value = prop.dt
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc) if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return None
