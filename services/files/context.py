"""What every WebDAV handler starts from: who asks, where the URL points, what is there, and whether
the request's conditions (If, If-Match, If-None-Match, If-(Un)Modified-Since) hold."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import sqlite_utils
from aiohttp import web

from services.core.auth import require_user
from services.core.config import Config
from services.core.errors import Forbidden, NotFound, PreconditionFailed
from services.core.http import BLOB_STORE, CONFIG, DATABASE
from services.core.tree import folder_access, quota_bytes

from . import locks
from .ifheader import ConditionList, parse_if, submitted_tokens
from .namespace import Location, Mount, destination_segments, locate, segments_of
from .resources import Resource, folder_root, lookup, user_root

STORE = BLOB_STORE  # opened by services.core.blobs.blob_store_context
DEVICE = "webdav"  # the journal's device name for changes made here


@dataclass(frozen=True)
class Call:
    """One WebDAV request, parsed once: the user, the request URL's segments, the If header's lists."""

    request: web.Request
    user: str
    mount: Mount  # the prefix the request came under: its hrefs use it
    segments: list[str]
    if_lists: list[ConditionList] | None
    credential: int | None = None  # the app password the request came with (None: the account's password)

    def locate(self, db: sqlite_utils.Database) -> Location:
        """Where the request URL points."""
        return locate(db, self.user, self.segments, self.mount)

    def destination(self, db: sqlite_utils.Database) -> Location:
        """Where the Destination header points: a path or a full URL, under any of the tree's mounts."""
        mount, segments = destination_segments(self.request.headers.get("Destination"), self.user)
        return locate(db, self.user, segments, mount)

    @property
    def submitted(self) -> set[str]:
        return submitted_tokens(self.if_lists) if self.if_lists else set()

    @property
    def config(self) -> Config:
        return self.request.config_dict[CONFIG]

    @property
    def database(self):
        return self.request.config_dict[DATABASE]

    def quota(self) -> int | None:
        """The owner's quota in bytes: the same [sync] quota_mb that sync enforces (None: no quota)."""
        return quota_bytes(self.config)


async def call_of(request: web.Request) -> Call:
    identity = await require_user(request)
    mount, segments = segments_of(request.raw_path, identity.user)
    header = request.headers.get("If")
    return Call(request, identity.user, mount, segments, parse_if(header) if header else None,
                identity.app_password_id)


def resource_at(db: sqlite_utils.Database, location: Location) -> Resource | None:
    if location.is_root:
        return user_root(db, location.user)
    if location.folder is None:
        return None
    if location.path == "" and not location.in_root_files:
        return folder_root(db, location.folder)
    return lookup(db, location.folder.id, location.path)


def existing(db: sqlite_utils.Database, location: Location) -> Resource:
    found = resource_at(db, location)
    if found is None:
        raise NotFound(f"nothing at {location.href(False)}")
    return found


def writable(db: sqlite_utils.Database, call: Call, location: Location) -> int:
    """The folder id, once the user may write there: Forbidden on a read-only share or outside any folder."""
    if location.folder is None:
        raise NotFound(f"no folder {location.top!r} in your tree") if location.top else Forbidden(
            "the top of your tree holds folders only")
    folder_access(db, call.user, location.folder.id, write=True)
    return location.folder.id


def lock_href(location: Location):
    """How a lock of `location`'s folder is named in a DAV:error body."""
    return lambda lock: location.at(lock.path).href(False)


def check_locks(db: sqlite_utils.Database, call: Call, location: Location, *, below: bool = False) -> None:
    if location.folder is not None:
        locks.check_unlocked(db, call.user, location.folder.id, location.path, call.submitted,
                             lock_href(location), below=below)


def _holds(db: sqlite_utils.Database, call: Call, each: ConditionList, default: Location,
           resource: Resource | None) -> bool:
    location, found = default, resource
    if each.resource is not None:
        try:
            mount, segments = segments_of(_path_of(each.resource), call.user)
            location = locate(db, call.user, segments, mount)
        except Exception:  # a tag naming something we cannot resolve matches nothing
            return False
        found = resource_at(db, location)
    for condition in each.conditions:
        if condition.kind == "token":
            lock = locks.by_token(db, condition.value)
            truth = (lock is not None and location.folder is not None and lock.folder_id == location.folder.id
                     and lock.covers(location.path))
        else:
            truth = found is not None and found.etag is not None and found.etag == condition.value
        if truth == condition.negated:
            return False
    return True


def _path_of(url: str) -> str:
    return urlsplit(url).path


def check_if(db: sqlite_utils.Database, call: Call, location: Location, resource: Resource | None) -> None:
    """PreconditionFailed unless the If header (when given) has a list that holds."""
    if call.if_lists and not any(_holds(db, call, each, location, resource) for each in call.if_lists):
        raise PreconditionFailed("no list of the If header holds")


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def modified(resource: Resource) -> datetime:
    """Last-Modified: the file's mtime as the journal knows it, to the second."""
    if resource.mtime_ns:
        return datetime.fromtimestamp(resource.mtime_ns // 1_000_000_000, timezone.utc)
    stamp = resource.modified_at or resource.created_at
    if stamp:
        return datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    return datetime.fromtimestamp(0, timezone.utc)


def etag_listed(header: str, etag: str | None) -> bool:
    """Whether an If-Match or If-None-Match value names `etag` (or is `*` and there is one); a W/
    prefix in the value is ignored."""
    if header.strip() == "*":
        return etag is not None
    return etag is not None and etag in [tag.strip().removeprefix("W/") for tag in header.split(",")]


def check_http_conditions(request: web.Request, resource: Resource | None, *, safe: bool) -> bool:
    """RFC 9110 §13: False when a GET/HEAD should answer 304; PreconditionFailed when a condition fails."""
    etag = resource.etag if resource else None
    exists = resource is not None
    if (value := request.headers.get("If-Match")) is not None:
        if not exists or not etag_listed(value, etag if value.strip() != "*" else "*"):
            raise PreconditionFailed("If-Match does not hold")
    elif exists and (since := _http_date(request.headers.get("If-Unmodified-Since"))):
        if modified(resource) > since:
            raise PreconditionFailed("modified since If-Unmodified-Since")
    if (value := request.headers.get("If-None-Match")) is not None:
        if exists and (value.strip() == "*" or etag_listed(value, etag)):
            if safe:
                return False
            raise PreconditionFailed("If-None-Match does not hold")
    elif safe and exists and (since := _http_date(request.headers.get("If-Modified-Since"))):
        if modified(resource) <= since:
            return False
    return True
