"""Delivery between local users, through the store (so change logs and sync tokens see it).

A REQUEST or CANCEL lands in the attendee's inbox and updates (or creates)
their copy in the calendar that holds the UID, or in their default calendar;
a REPLY lands in the organizer's inbox and sets the attendee's PARTSTAT in the
organizer's copy. Each delivery runs in a savepoint of the caller's write
transaction: one that fails (an attendee whose calendar refuses the object)
is undone alone and reported as a SCHEDULE-STATUS, never failing the PUT.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import sqlite_utils

from services.core.errors import HTTPError

from ..store import get_item, put_item
from . import attendee, itip
from .mailboxes import INBOX, default_calendar, find_by_uid, item_name, mailbox, message_name
from .tags import new_tag

log = logging.getLogger("dav.scheduling")

DELIVERED, NOT_DELIVERED = "1.2", "5.1"  # RFC 6638 §3.2.9 SCHEDULE-STATUS values


@contextmanager
def savepoint(db: sqlite_utils.Database, name: str = "delivery"):
    db.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        db.execute(f"ROLLBACK TO {name}")
        db.execute(f"RELEASE {name}")
        raise
    db.execute(f"RELEASE {name}")


def to_attendee(db: sqlite_utils.Database, user: str, message: itip.Message) -> str:
    """Deliver a REQUEST or CANCEL to local user `user`; returns the SCHEDULE-STATUS for the organizer."""
    uid = _uid(message.calendar)
    try:
        with savepoint(db):
            _to_inbox(db, user, uid, message.calendar)
            found = find_by_uid(db, user, uid)
            current = None
            if found is not None:
                collection, name = found
                current = itip.parse(get_item(db, collection.id, name).raw)
            elif message.method == "CANCEL":
                return DELIVERED  # nothing of theirs to cancel: the inbox message says it all
            else:
                collection = default_calendar(db, user, itip.components(message.calendar)[0].name)
                if collection is None:
                    raise HTTPError(f"{user} has no calendar for this component")
                name = item_name(db, collection, uid)
            updated = attendee.attendee_copy(message.calendar, current, message.recipient)
            put_item(db, collection.id, name, updated.to_ical())
            new_tag(db, collection.id, name)  # the organizer changed it: the attendee's tag moves
    except HTTPError as error:
        log.warning("%s for %s (UID %s) not delivered: %s", message.method, user, uid, error.reason)
        return NOT_DELIVERED
    return DELIVERED


def to_organizer(db: sqlite_utils.Database, user: str, message: itip.Message, replier: str) -> str:
    """Deliver an attendee's REPLY to local organizer `user`: inbox, and PARTSTAT in their copy."""
    uid = _uid(message.calendar)
    try:
        with savepoint(db):
            _to_inbox(db, user, uid, message.calendar)
            found = find_by_uid(db, user, uid)
            if found is not None:
                collection, name = found
                calendar = itip.parse(get_item(db, collection.id, name).raw)
                if calendar is not None and attendee.apply_reply(calendar, message.calendar, replier):
                    put_item(db, collection.id, name, calendar.to_ical())
    except HTTPError as error:
        log.warning("REPLY from %s to %s (UID %s) not delivered: %s", replier, user, uid, error.reason)
        return NOT_DELIVERED
    return DELIVERED


def _to_inbox(db, user: str, uid: str, calendar) -> None:
    put_item(db, mailbox(db, user, INBOX).id, message_name(uid), calendar.to_ical())


def _uid(calendar) -> str:
    return str(itip.components(calendar)[0].get("UID"))
