"""The scheduling properties PROPFIND reports (RFC 6638 §2, §9) on principals, inboxes and outboxes.

They depend on the config (the mail domain) and on the store (the default
calendar), so they are worked out here, with the database at hand, and
handed to http/properties.py as a resource's extra properties.
"""
from __future__ import annotations

import sqlite_utils

from ..errors import CALDAV, DAV
from ..http.paths import COLLECTION, PRINCIPAL, Target, home_path
from ..http.xmlio import CALSERVER, element, href, tag
from ..store import CALENDAR
from .addresses import Settings, user_addresses
from .mailboxes import INBOX, OUTBOX, default_calendar, role

RESOURCETYPES = {INBOX: "schedule-inbox", OUTBOX: "schedule-outbox"}


def scheduling_properties(db: sqlite_utils.Database, settings: Settings, target: Target, collection) -> dict:
    """Clark name -> value of the scheduling properties `target` has (none for most resources)."""
    if target.level == PRINCIPAL:
        calendars = home_path(target.user, CALENDAR)
        addresses = user_addresses(db, target.user, settings)
        return {
            tag(CALDAV, "calendar-user-address-set"): [href(a) for a in addresses],
            tag(CALSERVER, "email-address-set"): [element(tag(CALSERVER, "email-address"), a[7:])
                                                  for a in addresses if a.startswith("mailto:")],
            tag(CALDAV, "calendar-user-type"): "INDIVIDUAL",
            tag(CALDAV, "schedule-inbox-URL"): [href(f"{calendars}{INBOX}/")],
            tag(CALDAV, "schedule-outbox-URL"): [href(f"{calendars}{OUTBOX}/")],
        }
    kind = role(collection)
    if target.level != COLLECTION or kind is None or collection.owner != target.user:
        return {}
    values = {tag(DAV, "resourcetype"): [element(tag(DAV, "collection")),
                                         element(tag(CALDAV, RESOURCETYPES[kind]))]}
    if kind == INBOX:
        default = default_calendar(db, collection.owner, create=False)
        if default is not None:
            values[tag(CALDAV, "schedule-default-calendar-URL")] = [
                href(Target(COLLECTION, collection.owner, CALENDAR, default.name).path)]
    return values
