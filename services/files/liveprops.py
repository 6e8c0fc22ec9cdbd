"""Live properties (RFC 4918 §15, RFC 4331 quota, and the oc:/nc: ones of ncprops.py): computed from the
journal, never stored, protected. Properties are named in Clark notation ({namespace}name)."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from email.utils import format_datetime
from typing import Callable

import sqlite_utils

from services.core.multistatus import element
from services.core.tree import BlobStore, usage
from services.core.user_content import content_type

from . import locks, ncprops
from .context import modified
from .namespace import Location, shown_name
from .resources import Resource
from .xmlio import dav

DAV_ALLPROP = ("resourcetype", "getcontentlength", "getcontenttype", "getetag", "getlastmodified",
               "creationdate", "displayname", "supportedlock", "lockdiscovery")
QUOTA = ("quota-available-bytes", "quota-used-bytes")  # RFC 4331: only when asked for by name
ALLPROP = tuple(dav(name) for name in DAV_ALLPROP) + ncprops.ALLPROP


class PropertyContext:
    """What live properties need beyond the resource: the database, quota, where blobs live."""

    def __init__(self, db: sqlite_utils.Database, quota: int | None, store: BlobStore, user: str):
        self.db, self.quota, self.store, self.user = db, quota, store, user
        self._usage: dict[str, int] = {}
        self.memo: dict = {}  # what one answer reads once for many resources (ncprops)
        self.listed_revisions: set[int] = set()  # the files' revisions of the listing being answered

    def used(self, owner: str) -> int:
        if owner not in self._usage:
            self._usage[owner] = usage(self.db, owner)
        return self._usage[owner]


def activelock(lock: locks.Lock, root_href: str) -> ET.Element:
    node = element(dav("activelock"), children=[
        element(dav("locktype"), children=[element(dav("write"))]),
        element(dav("lockscope"), children=[element(dav(lock.scope))]),
        element(dav("depth"), "infinity" if lock.depth == "infinity" else "0"),
    ])
    if lock.owner:
        node.append(ET.fromstring(lock.owner))
    node.extend([element(dav("timeout"), f"Second-{lock.timeout}"),
                 element(dav("locktoken"), children=[element(dav("href"), lock.token)]),
                 element(dav("lockroot"), children=[element(dav("href"), root_href)])])
    return node


def _supportedlock() -> list[ET.Element]:
    return [element(dav("lockentry"), children=[
        element(dav("lockscope"), children=[element(dav(scope))]),
        element(dav("locktype"), children=[element(dav("write"))])]) for scope in ("exclusive", "shared")]


def live_property(ctx: PropertyContext, location: Location, resource: Resource, name: str) -> ET.Element | None:
    """The element for live property `name` (a Clark name), or None when the resource has none."""
    getter: Callable | None = _GETTERS.get(name)
    if getter is None:
        return None
    value = getter(ctx, location, resource)
    if value is None:
        return None
    if isinstance(value, list):
        return element(name, children=value)
    return element(name, str(value))


def _displayname(ctx, location: Location, resource: Resource):
    if location.is_root:
        return location.user
    if location.is_folder:
        return shown_name(location.folder)
    return resource.name


def _lockdiscovery(ctx, location: Location, resource: Resource):
    if location.folder is None:
        return []
    return [activelock(lock, location.at(lock.path).href(lock.path == ""))
            for lock in locks.covering(ctx.db, location.folder.id, location.path)]


def _owner(location: Location) -> str:
    return location.folder.owner if location.folder else location.user


def _quota_used(ctx, location: Location, resource: Resource):
    return ctx.used(_owner(location)) if resource.is_collection else None


def _quota_available(ctx, location: Location, resource: Resource):
    if not resource.is_collection:
        return None
    free = ctx.store.free_bytes()  # None from an object store: it has no disk to fill
    if ctx.quota is None:
        return free  # both unknown: the property is left out (RFC 4331 §3), never a made-up number
    left = max(0, ctx.quota - ctx.used(_owner(location)))
    return left if free is None else min(free, left)


def _creationdate(ctx, location: Location, resource: Resource):
    stamp = resource.created_at
    return f"{stamp[:19]}Z" if stamp else None


_DAV_GETTERS: dict[str, Callable] = {
    "resourcetype": lambda ctx, loc, res: [element(dav("collection"))] if res.is_collection else [],
    # Numeric on collections too (the bytes below them): Android's parser reads every one as a number.
    "getcontentlength": lambda ctx, loc, res: res.tree_size if res.is_collection else res.size,
    "getcontenttype": lambda ctx, loc, res: None if res.is_collection else content_type(res.name),
    "getetag": lambda ctx, loc, res: res.etag,
    "getlastmodified": lambda ctx, loc, res: format_datetime(modified(res), usegmt=True),
    "creationdate": _creationdate,
    "displayname": _displayname,
    "supportedlock": lambda ctx, loc, res: _supportedlock(),
    "lockdiscovery": _lockdiscovery,
    "quota-used-bytes": _quota_used,
    "quota-available-bytes": _quota_available,
}
_GETTERS: dict[str, Callable] = {dav(name): getter for name, getter in _DAV_GETTERS.items()} | ncprops.GETTERS
LIVE = frozenset(_GETTERS)
