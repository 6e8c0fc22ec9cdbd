"""Shares as CalendarServer's sharing extension shows them to Apple clients (caldav-sharing, §4-§6).

hearth has one sharing mechanism (store/sharing.py): a share takes effect at
once, with no invitation to accept, so every sharee is `CS:invite-accepted`
and the notification collection each principal names in `CS:notification-URL`
stays empty (nothing waits for an answer). What Apple Calendar reads:

- the owner's collection: `CS:invite` (each sharee, their access and status),
  `CS:allowed-sharing-modes` (`CS:can-be-shared`; hearth does not publish), and
  `CS:shared-owner` in its resourcetype while it is shared;
- the sharee's copy: `CS:shared` in its resourcetype, `CS:shared-url` (the
  owner's collection) and `CS:invite` with the owner as `CS:organizer`;
- anyone's own name, description, colour and order for a collection
  (§5.5.3 per-user properties, store/personal.py), over the owner's values.
"""
from __future__ import annotations

import sqlite_utils

from ..errors import DAV
from ..scheduling.addresses import Settings, user_addresses
from ..scheduling.mailboxes import role
from ..store import Collection, shares_of
from ..store.personal import personal_properties
from .paths import COLLECTION, NOTIFICATIONS, PRINCIPAL, Target, notifications_path, principal_path
from .properties import kind_element
from .settable import personal_clark
from .xmlio import CALSERVER, Value, element, href, tag

# Nothing is ever added to a notification collection, so one token describes every state it has.
EMPTY_SYNC_TOKEN = "http://hearth/ns/sync/notifications-0"


def sharing_properties(db: sqlite_utils.Database, settings: Settings, target: Target,
                       collection: Collection | None) -> dict[str, Value]:
    """Clark name -> value of the sharing properties `target` has (none for most resources)."""
    if target.level == PRINCIPAL:
        return {tag(CALSERVER, "notification-URL"): [href(notifications_path(target.user))]}
    if target.level == NOTIFICATIONS:
        return _notification_collection(target.user)
    if target.level != COLLECTION or collection is None or role(collection) is not None:
        return {}
    sharees = shares_of(db, collection.id)
    values: dict[str, Value] = {}
    if collection.access == "owner":
        values[tag(CALSERVER, "allowed-sharing-modes")] = [element(tag(CALSERVER, "can-be-shared"))]
        if sharees:
            values[tag(DAV, "resourcetype")] = _resourcetype(collection, "shared-owner")
            values[tag(CALSERVER, "invite")] = [_user(db, name, mode, settings) for name, mode in sharees.items()]
    else:
        owner_url = Target(COLLECTION, collection.owner, collection.kind, collection.name).path
        values[tag(DAV, "resourcetype")] = _resourcetype(collection, "shared")
        values[tag(CALSERVER, "shared-url")] = [href(owner_url)]
        values[tag(CALSERVER, "invite")] = [_organizer(collection.owner),
                                            *(_user(db, name, mode, settings) for name, mode in sharees.items())]
    return values


def personal_values(db: sqlite_utils.Database, collection: Collection | None, user: str) -> dict[str, Value]:
    """The values `user` set for themselves on the collection (store/personal.py), as its properties."""
    if collection is None:
        return {}
    return {personal_clark(collection.kind, name): value
            for name, value in personal_properties(db, collection.id, user).items()}


def _notification_collection(user: str) -> dict[str, Value]:
    """The (always empty) notification collection: CS:notification in its resourcetype."""
    return {tag(DAV, "resourcetype"): [element(tag(DAV, "collection")), element(tag(CALSERVER, "notification"))],
            tag(DAV, "displayname"): "Notifications", tag(DAV, "owner"): [href(principal_path(user))],
            tag(DAV, "sync-token"): EMPTY_SYNC_TOKEN, tag(CALSERVER, "getctag"): "0"}


def _resourcetype(collection: Collection, marker: str) -> list:
    return [element(tag(DAV, "collection")), kind_element(collection.kind), element(tag(CALSERVER, marker))]


def _user(db: sqlite_utils.Database, name: str, mode: str, settings: Settings):
    # The sharee's first address: the one their own client organizes with, and finds them by in contacts.
    return element(tag(CALSERVER, "user"), children=[
        href(user_addresses(db, name, settings)[0]), element(tag(CALSERVER, "common-name"), name),
        element(tag(CALSERVER, "invite-accepted")),
        element(tag(CALSERVER, "access"), children=[element(tag(CALSERVER, mode))])])


def _organizer(owner: str):
    return element(tag(CALSERVER, "organizer"), children=[href(principal_path(owner)),
                                                          element(tag(CALSERVER, "common-name"), owner)])
