"""Implicit scheduling (RFC 6638 §3.2): what a PUT or DELETE of a calendar object sends, and to whom.

Called by the PUT and DELETE handlers inside their own write transaction,
before the store call, so the change and every message it causes commit
together or not at all. The calendar's owner is the calendar user: when
they are the ORGANIZER, attendees get REQUEST/CANCEL (and SCHEDULE-STATUS is
written on the organizer's copy); when they are an ATTENDEE whose PARTSTAT
changed, the organizer gets a REPLY. Objects without ORGANIZER or ATTENDEE
lines are recognised with one regular expression and left alone.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace

import icalendar
import sqlite_utils

from services.core.errors import Forbidden, HTTPError

from ..instance_limit import check_instance_count
from ..store import CALENDAR, Collection, Item, delete_item, find_item, put_item
from . import attendee, deliver, imip, itip
from .addresses import Settings, is_mail, is_ours, local_user, normalize
from .deliver import savepoint
from .mailboxes import role
from .tags import check_tag_match, ensure_tag, new_tag

log = logging.getLogger("dav.scheduling")
SCHEDULING_LINE = re.compile(rb"^(ORGANIZER|ATTENDEE)[;:]", re.IGNORECASE | re.MULTILINE)
QUEUED, INVALID_USER, NO_DELIVERY = "1.1", "3.7", "5.1"


@dataclass(frozen=True)
class Outcome:
    raw: bytes  # what to store
    rewritten: bool = False  # the server changed the client's bytes: the answer carries no ETag
    mail_queued: bool = False  # wake the iMIP sender
    side: str | None = None  # 'organizer' | 'attendee': the owner's part in a scheduling object
    schedule_tag: str | None = None


def scheduled_put(db: sqlite_utils.Database, settings: Settings, collection: Collection, name: str, raw: bytes, *,
                  if_match: str | None = None, if_none_match: bool = False, if_schedule_tag_match: str | None = None,
                  schedule_reply: bool = True) -> tuple[Item, bool, Outcome]:
    """PUT with implicit scheduling: (item, created, outcome), all in the caller's write transaction.

    Raises what put_item raises, PreconditionFailed for a stale If-Schedule-Tag-Match, and
    Forbidden for a PUT into the inbox or outbox."""
    check_tag_match(db, collection.id, name, if_schedule_tag_match)
    if not _involved(db, collection, name, raw):  # a plain event: the store's PUT and nothing else
        return (*put_item(db, collection.id, name, raw, if_match=if_match, if_none_match=if_none_match),
                Outcome(raw))
    before = find_item(db, collection.id, name)
    outcome = _guarded(db, f"PUT {collection.owner}/{name}", Outcome(raw), lambda: on_put(
        db, settings, collection, name, raw, schedule_reply=schedule_reply,
        keep_replies=if_schedule_tag_match is not None))
    item, created = put_item(db, collection.id, name, outcome.raw, if_match=if_match, if_none_match=if_none_match)
    if outcome.side == "organizer" and (before is None or before.etag != item.etag):
        outcome = replace(outcome, schedule_tag=new_tag(db, collection.id, name))
    elif outcome.side is not None:
        outcome = replace(outcome, schedule_tag=ensure_tag(db, collection.id, name))
    return item, created, outcome


def scheduled_delete(db: sqlite_utils.Database, settings: Settings, collection: Collection, name: str, *,
                     if_match: str | None = None, if_schedule_tag_match: str | None = None,
                     schedule_reply: bool = True) -> Outcome:
    """DELETE with implicit scheduling; raises what delete_item raises."""
    check_tag_match(db, collection.id, name, if_schedule_tag_match)
    outcome = _guarded(db, f"DELETE {collection.owner}/{name}", Outcome(b""), lambda: on_delete(
        db, settings, collection, name, schedule_reply=schedule_reply))
    delete_item(db, collection.id, name, if_match=if_match)
    return outcome


def _guarded(db, what: str, fallback: Outcome, schedule) -> Outcome:
    """Run `schedule` in a savepoint. The event is the user's and scheduling it a service: a bug in
    the second must never lose the first, so an unexpected error undoes the scheduling alone."""
    try:
        with savepoint(db, "scheduling"):
            return schedule()
    except HTTPError:
        raise
    except Exception:
        log.exception("scheduling of %s failed; done without scheduling", what)
        return fallback


def _involved(db, collection: Collection, name: str, raw: bytes) -> bool:
    """Whether scheduling has anything to do with this PUT; Forbidden for the inbox and outbox."""
    if collection.kind != CALENDAR:
        return False
    if role(collection) is not None:
        raise Forbidden(f"the schedule {collection.name} is filled by the server, not by PUT")
    return SCHEDULING_LINE.search(raw) is not None or _stored_schedules(db, collection.id, name)


def on_put(db: sqlite_utils.Database, settings: Settings, collection: Collection, name: str, raw: bytes, *,
           schedule_reply: bool = True, keep_replies: bool = False) -> Outcome:
    """Schedule what storing `raw` as `name` means; returns the bytes to store.

    `keep_replies`: the organizer's client sent If-Schedule-Tag-Match, so the
    PARTSTATs attendees replied with since its copy are kept, not overwritten."""
    if not _involved(db, collection, name, raw):
        return Outcome(raw)
    new = itip.parse(raw)
    if new is None or not itip.components(new):
        return Outcome(raw)  # the store refuses it with the right precondition
    # Refused here, before any attendee's delivery is tried, with what the store would refuse anyway.
    check_instance_count(new, itip.components(new)[0].name)
    old = _stored(db, collection.id, name)
    organizer = itip.organizer(new)
    mine = organizer is not None and local_user(db, organizer, settings) == collection.owner
    if keep_replies and mine and old is not None and attendee.keep_partstats(new, old, organizer):
        raw = new.to_ical()
        return replace(_schedule(db, settings, collection.owner, old, new, raw, schedule_reply), rewritten=True)
    return _schedule(db, settings, collection.owner, old, new, raw, schedule_reply)


def on_delete(db: sqlite_utils.Database, settings: Settings, collection: Collection, name: str, *,
              schedule_reply: bool = True) -> Outcome:
    """Schedule what deleting item `name` means (CANCEL from the organizer, DECLINED from an attendee)."""
    if collection.kind != CALENDAR or role(collection) is not None:
        return Outcome(b"")
    if not _stored_schedules(db, collection.id, name):
        return Outcome(b"")
    return _schedule(db, settings, collection.owner, _stored(db, collection.id, name), None, b"", schedule_reply)


def _schedule(db, settings: Settings, owner: str, old, new, raw: bytes, schedule_reply: bool) -> Outcome:
    organizer = itip.organizer(new) or itip.organizer(old)
    if organizer is None:
        return Outcome(raw)
    if local_user(db, organizer, settings) == owner:
        return replace(_as_organizer(db, settings, owner, organizer, old, new, raw), side="organizer")
    me = _my_address(db, settings, owner, new, old)
    if me is None:
        return Outcome(raw)
    if not schedule_reply:
        return Outcome(raw, side="attendee")
    return replace(_as_attendee(db, settings, organizer, me, old, new, raw), side="attendee")


def _as_organizer(db, settings: Settings, owner: str, organizer: str, old, new, raw: bytes) -> Outcome:
    if new is not None and not itip.organizer_schedules(new):
        return Outcome(raw)
    if old is not None and itip.organizer(old) != organizer:
        old = None  # someone else's object before: nothing was sent for it by this organizer
    scheduling_new = new if new is not None and itip.organizer(new) == organizer else None
    if new is not None and scheduling_new is None:
        scheduling_new = _without_attendees(new)  # ORGANIZER removed: as if every attendee was
    statuses: dict[str, str] = {}
    queued = False
    for message in itip.organizer_messages(old, scheduling_new, organizer):
        user = local_user(db, message.recipient, settings)
        if user == owner:
            continue  # the organizer listed under another of their addresses: nothing to send
        if user is not None:
            statuses[message.recipient] = deliver.to_attendee(db, user, message)
        elif is_ours(message.recipient, settings):
            statuses[message.recipient] = INVALID_USER
        elif is_mail(message.recipient) and settings.imip:
            if message.significant:
                imip.queue(db, settings, organizer, message)
                statuses[message.recipient] = QUEUED
                queued = True
        elif message.significant:
            statuses[message.recipient] = NO_DELIVERY
    if new is not None and itip.set_schedule_status(new, statuses):
        return Outcome(new.to_ical(), rewritten=True, mail_queued=queued)
    return Outcome(raw, mail_queued=queued)


def _as_attendee(db, settings: Settings, organizer: str, me: str, old, new, raw: bytes) -> Outcome:
    source = new if new is not None else old
    if not itip.organizer_schedules(source):
        return Outcome(raw)
    if new is None:
        if itip.is_cancelled(old):
            return Outcome(raw)
        message = attendee.reply_message(old, None, me, declined=True)
    else:
        message = attendee.reply_message(old, new, me)
    if message is None:
        return Outcome(raw)
    user = local_user(db, organizer, settings)
    if user is not None:
        deliver.to_organizer(db, user, message, me)
    elif is_mail(organizer) and not is_ours(organizer, settings) and settings.imip:
        imip.queue(db, settings, me, message)
        return Outcome(raw, mail_queued=True)
    return Outcome(raw)


def _my_address(db, settings: Settings, owner: str, *calendars) -> str | None:
    """The attendee address under which the calendar's owner is invited, if they are."""
    for calendar in calendars:
        for component in itip.components(calendar):
            for address in itip.attendees(component):
                if local_user(db, address, settings) == owner:
                    return normalize(address)
    return None


def _without_attendees(calendar: icalendar.Calendar) -> icalendar.Calendar:
    stripped = icalendar.Calendar.from_ical(calendar.to_ical())
    for component in itip.components(stripped):
        component.pop("ATTENDEE", None)
    return stripped


def _stored_schedules(db, collection_id: int, name: str) -> bool:
    """Whether the stored item (if any) names an organizer, checked in SQLite without reading it out."""
    row = db.execute("SELECT instr(upper(CAST(raw AS TEXT)), 'ORGANIZER') FROM dav_items "
                     "WHERE collection_id = ? AND name = ?", [collection_id, name]).fetchone()
    return bool(row and row[0])


def _stored(db, collection_id: int, name: str) -> icalendar.Calendar | None:
    item = find_item(db, collection_id, name, with_raw=True)
    return None if item is None else itip.parse(item.raw)
