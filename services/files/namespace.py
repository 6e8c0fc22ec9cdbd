"""Where a /files/ URL points: the user's root, one of their folders, or a path inside one.

`/files/<user>/` lists the user's own folders by name and the folders shared
with them as `<name> (<owner>)`; below a folder, URL segments are the journal
path. Segments are decoded one by one, so an encoded slash (`%2F`), a dot
segment (`..`, `%2e%2e`), a backslash or a NUL is refused instead of being
reinterpreted, and the path then goes through the tree's normalize_path.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

import sqlite_utils

from services.core.errors import BadGateway, BadRequest, Forbidden
from services.core.tree import Folder, list_folders, normalize_path

PREFIX = "/files/"


@dataclass(frozen=True)
class Location:
    """A URL inside a user's tree. `folder` is None at the user's root and for an unknown top-level name."""

    user: str
    top: str | None  # the top-level name (a folder's name as the user sees it); None: the user's root
    folder: Folder | None
    path: str  # folder-relative journal path; "" is the folder itself

    @property
    def is_root(self) -> bool:
        return self.top is None

    @property
    def is_folder(self) -> bool:
        return self.top is not None and self.path == ""

    def href(self, collection: bool) -> str:
        return href_of(self.user, self.top, self.path, collection)

    def child(self, name: str) -> "Location":
        return Location(self.user, self.top, self.folder, f"{self.path}/{name}" if self.path else name)

    @property
    def parent_path(self) -> str:
        return self.path.rpartition("/")[0]


def href_of(user: str, top: str | None, path: str, collection: bool) -> str:
    parts = [user] + ([top] if top is not None else []) + (path.split("/") if path else [])
    url = PREFIX + "/".join(quote(part, safe="") for part in parts)
    return url + "/" if collection else url


def shown_name(folder: Folder) -> str:
    """How a folder is named in the top level of the user's tree: shared folders carry their owner."""
    return folder.name if folder.access == "owner" else f"{folder.name} ({folder.owner})"


def segments_of(raw_path: str) -> list[str]:
    """The decoded segments after /files/, refusing anything that could escape or alias a path."""
    path = raw_path.split("?", 1)[0]
    if "#" in path:  # a fragment is never sent by a client; acting on the URL without it would be a guess
        raise BadRequest("a request URL must not carry a fragment (#)")
    if not path.startswith(PREFIX):
        raise BadRequest(f"not a /files/ URL: {path[:200]!r}")
    raw = path[len(PREFIX):]
    if raw.endswith("/"):
        raw = raw[:-1]
    if not raw:
        return []
    segments = []
    for part in raw.split("/"):
        try:
            name = unquote(part, errors="strict")
        except UnicodeDecodeError:
            raise BadRequest("URL path is not UTF-8") from None
        if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name:
            raise BadRequest(f"URL path segment refused: {part[:100]!r}")
        segments.append(name)
    return segments


def locate(db: sqlite_utils.Database, user: str, segments: list[str]) -> Location:
    """The Location of these segments for `user`. Forbidden for another user's tree (shares appear in
    the grantee's own tree instead); BadRequest for a path the journal would not accept."""
    if not segments:
        raise BadRequest("no user in the URL: /files/<user>/")
    if segments[0] != user:
        raise Forbidden(f"{user} cannot reach another user's files at /files/{segments[0]}/")
    if len(segments) == 1:
        return Location(user, None, None, "")
    top = segments[1]
    folder = next((f for f in list_folders(db, user) if shown_name(f) == top), None)
    path = normalize_path("/".join(segments[2:])) if len(segments) > 2 else ""
    return Location(user, top, folder, path)


def destination_segments(value: str | None) -> list[str]:
    """The segments of a Destination header (an absolute URL or path). Only the path counts: behind the
    front end or a tunnel the host a client names is not one this daemon could check."""
    if not value:
        raise BadRequest("Destination header required")
    path = urlsplit(value).path
    if not path.startswith(PREFIX):
        raise BadGateway(f"Destination is not a /files/ URL of this server: {value[:200]!r}")
    return segments_of(path)
