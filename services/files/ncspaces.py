"""What the Nextcloud apps' per-user DAV spaces beside the file tree (/remote.php/dav/trashbin/USER/,
/remote.php/dav/versions/USER/) share: the caller must be the user the URL names, items are named
by a time that two of them may share, and a restore's Destination must be the space's restore/."""
from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

from aiohttp import web

from services.core.auth import require_user
from services.core.errors import BadRequest, Forbidden


async def space_user(request: web.Request, what: str) -> str:
    """The caller, once the URL's {user} is them: Forbidden for another user's space."""
    identity = await require_user(request)
    if request.match_info["user"] != identity.user:
        raise Forbidden(f"{identity.user} cannot reach another user's {what}")
    return identity.user


def unique_name(base: str, taken: set[str]) -> str:
    """`base`, or `base-2`, `base-3`… when an earlier item took it (two named by the same second)."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    taken.add(name)
    return name


def unix_seconds(stamp: str | None) -> int:
    """A journal timestamp (UTC text) as unix seconds."""
    if not stamp:
        return 0
    return int(datetime.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp())


def http_date(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns // 1_000_000_000, timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def check_restore_destination(request: web.Request, prefix: str, user: str) -> None:
    """BadRequest unless Destination (a path or a full URL) lies in the space's restore/ collection."""
    destination = urlsplit(request.headers.get("Destination", "")).path
    if not destination.startswith(f"{prefix}{quote(user, safe='')}/restore/"):
        raise BadRequest(f"restore by COPY or MOVE to {prefix}{user}/restore/…")
