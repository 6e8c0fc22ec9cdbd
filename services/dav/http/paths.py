"""What a /dav/ URL names: the root, a principal, a home, a collection or an item.

    /dav/                                    root (current-user-principal lives here)
    /dav/principals/                         the principal collection (where principals are searched)
    /dav/principals/<user>/                  principal
    /dav/notifications/<user>/               the principal's (CalendarServer) notification collection
    /dav/calendars/<user>/                   calendar home;  /dav/addressbooks/<user>/  address book home
    /dav/calendars/<user>/<collection>/      a calendar (an address book under addressbooks/)
    /dav/calendars/<user>/<collection>/<item>
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from services.core.errors import NotFound

from ..store import ADDRESSBOOK, CALENDAR

PREFIX = "/dav/"
HOMES = {"calendars": CALENDAR, "addressbooks": ADDRESSBOOK}
HOME_OF = {kind: segment for segment, kind in HOMES.items()}

ROOT, PRINCIPALS, PRINCIPAL, HOME, COLLECTION, ITEM = "root", "principals", "principal", "home", "collection", "item"
PRINCIPAL_COLLECTION = f"{PREFIX}principals/"
NOTIFICATIONS = "notifications"


@dataclass(frozen=True)
class Target:
    """A parsed /dav/ path; `user` owns what it names, `kind` is 'calendar' | 'addressbook'."""

    level: str
    user: str | None = None
    kind: str | None = None
    collection: str | None = None
    item: str | None = None

    @property
    def path(self) -> str:
        """The canonical href of this resource."""
        if self.level == ROOT:
            return PREFIX
        if self.level == PRINCIPALS:
            return PRINCIPAL_COLLECTION
        if self.level == PRINCIPAL:
            return principal_path(self.user)
        if self.level == NOTIFICATIONS:
            return notifications_path(self.user)
        path = home_path(self.user, self.kind)
        if self.collection is not None:
            path += quote(self.collection, safe="") + "/"
        if self.item is not None:
            path += quote(self.item, safe="")
        return path

    def child(self, name: str, level: str) -> "Target":
        if level == COLLECTION:
            return Target(COLLECTION, self.user, self.kind, name)
        return Target(ITEM, self.user, self.kind, self.collection, name)


def principal_path(user: str) -> str:
    return f"{PRINCIPAL_COLLECTION}{quote(user, safe='')}/"


def notifications_path(user: str) -> str:
    return f"{PREFIX}{NOTIFICATIONS}/{quote(user, safe='')}/"


def home_path(user: str, kind: str) -> str:
    return f"{PREFIX}{HOME_OF[kind]}/{quote(user, safe='')}/"


def parse_path(raw_path: str) -> Target:
    """The Target of a raw (still percent-encoded) request path; NotFound for anything else."""
    if not raw_path.startswith(PREFIX):
        raise NotFound(f"{raw_path} is not under {PREFIX}")
    parts = [unquote(part) for part in raw_path[len(PREFIX):].split("/")]
    if parts and parts[-1] == "":
        parts.pop()  # a trailing slash; collections are named with it, items without
    if not parts:
        return Target(ROOT)
    if any(part in ("", ".", "..") for part in parts):
        raise NotFound(f"no resource at {raw_path}")
    head, rest = parts[0], parts[1:]
    if head == "principals" and not rest:
        return Target(PRINCIPALS)
    if head == "principals" and len(rest) == 1:
        return Target(PRINCIPAL, rest[0])
    if head == NOTIFICATIONS and len(rest) == 1:
        return Target(NOTIFICATIONS, rest[0])
    if head in HOMES and 1 <= len(rest) <= 3:
        level = (HOME, COLLECTION, ITEM)[len(rest) - 1]
        return Target(level, rest[0], HOMES[head], *rest[1:])
    raise NotFound(f"no resource at {raw_path}")
