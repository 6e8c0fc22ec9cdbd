"""Where a file URL points: the user's root, one of their folders, or a path inside one.

One tree, three mounts (MOUNTS): `/files/<user>/`, the Nextcloud apps'
`/remote.php/dav/files/<user>/` and the legacy `/remote.php/webdav/` (the
user who asks, unnamed). A request's mount is kept in its Location, so every
href in an answer uses the prefix the client asked with (the Nextcloud clients
refuse a listing whose hrefs start elsewhere).

`/files/<user>/` lists the user's own folders by name and the folders shared
with them as `<name> (<owner>)`; below a folder, URL segments are the journal
path. Segments are decoded one by one, so an encoded slash (`%2F`), a dot
segment (`..`, `%2e%2e`), a backslash or a NUL is refused instead of being
reinterpreted, and the path then goes through the tree's normalize_path.

Root-level files. The top of a hearth tree holds folders (what `hearth sync`
syncs), yet WebDAV and Nextcloud clients put files at the root. Those live in
the user's own folder named ROOT_FILES ("Root files"), made on first need:
it is not listed at the root itself, its members are, with the paths a client
gave them (`/files/alice/photo.jpg` is `photo.jpg` in "Root files"). A
`hearth sync` client sees it as an ordinary folder by that name and syncs it
like any other. A top-level folder and a root-level file never share a name:
the folder wins the URL, and a PUT or MKCOL onto the other is refused.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote, unquote, urlsplit

import sqlite_utils

from services.core.errors import BadGateway, BadRequest, Forbidden
from services.core.tree import ROOT_FILES, Folder, list_folders, normalize_path, open_or_create_folder
from services.core.tree.paths import parent_and_descendants_pattern

PREFIX = "/files/"


@dataclass(frozen=True)
class Mount:
    """A URL prefix the tree is served under; `named_user`: whether the user's id follows it."""

    prefix: str
    named_user: bool

    def href(self, user: str, parts: list[str], collection: bool) -> str:
        names = ([user] if self.named_user else []) + parts
        url = self.prefix + "/".join(quote(part, safe="") for part in names)
        if not names:
            return url
        return url + "/" if collection else url


FILES = Mount(PREFIX, True)
MOUNTS = (FILES, Mount("/remote.php/dav/files/", True), Mount("/remote.php/webdav/", False))


@dataclass(frozen=True)
class Location:
    """A URL inside a user's tree. `folder` is None at the user's root, for a new top-level name, and for
    a root-level path while ROOT_FILES does not exist yet."""

    user: str
    top: str | None  # a folder's name as the user sees it; "": a root-level path (in ROOT_FILES); None: the root
    folder: Folder | None
    path: str  # folder-relative journal path; "" is the folder itself
    mount: Mount = FILES  # the prefix the client asked with: hrefs use it

    @property
    def is_root(self) -> bool:
        return self.top is None

    @property
    def is_folder(self) -> bool:
        return bool(self.top) and self.path == ""

    @property
    def in_root_files(self) -> bool:
        """A root-level file or directory: `top` is "" and the folder is ROOT_FILES (None until made)."""
        return self.top == ""

    def href(self, collection: bool) -> str:
        parts = ([self.top] if self.top else []) + (self.path.split("/") if self.path else [])
        return self.mount.href(self.user, parts, collection or not parts)

    def child(self, name: str) -> "Location":
        return replace(self, path=f"{self.path}/{name}" if self.path else name)

    def within(self, top: str, folder: Folder, path: str) -> "Location":
        """A location elsewhere in the same user's tree, under the same mount."""
        return replace(self, top=top, folder=folder, path=path)

    def at(self, path: str) -> "Location":
        """Another path of the same folder, under the same mount."""
        return replace(self, path=path)

    @property
    def parent_path(self) -> str:
        return self.path.rpartition("/")[0]


def shown_name(folder: Folder) -> str:
    """How a folder is named in the top level of the user's tree: shared folders carry their owner."""
    return folder.name if folder.access == "owner" else f"{folder.name} ({folder.owner})"


def mount_of(path: str) -> Mount | None:
    for mount in MOUNTS:
        if path.startswith(mount.prefix) or path == mount.prefix.rstrip("/"):
            return mount
    return None


def segments_of(raw_path: str, user: str) -> tuple[Mount, list[str]]:
    """The mount and the decoded segments after it, the user's id first (a mount that names no user
    stands for `user`), refusing anything that could escape or alias a path."""
    path = raw_path.split("?", 1)[0]
    if "#" in path:  # a fragment is never sent by a client; acting on the URL without it would be a guess
        raise BadRequest("a request URL must not carry a fragment (#)")
    mount = mount_of(path)
    if mount is None:
        raise BadRequest(f"not a file URL of this server: {path[:200]!r}")
    # Trailing slashes are not segments: the desktop client asks for `.../files/alice//`.
    segments = decode_segments(path[len(mount.prefix):].rstrip("/"))
    return mount, segments if mount.named_user else [user, *segments]


def decode_segments(raw: str) -> list[str]:
    """The percent-decoded segments of a raw URL path; BadRequest for one that could escape or alias."""
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


def is_root_files(folder: Folder) -> bool:
    return folder.access == "owner" and folder.name == ROOT_FILES


def top_folders(db: sqlite_utils.Database, user: str) -> list[Folder]:
    """The folders listed at the top of the user's tree: all but ROOT_FILES, whose members are listed instead."""
    return [f for f in list_folders(db, user) if not is_root_files(f)]


def root_files_folder(db: sqlite_utils.Database, user: str) -> Folder | None:
    return next((f for f in list_folders(db, user) if is_root_files(f)), None)


def locate(db: sqlite_utils.Database, user: str, segments: list[str], mount: Mount = FILES) -> Location:
    """The Location of these segments for `user`. Forbidden for another user's tree (shares appear in
    the grantee's own tree instead); BadRequest for a path the journal would not accept.

    A top-level name that is no folder is a root-level file when ROOT_FILES has it, or when it is
    deeper than one segment; one segment naming nothing stays a bare new name (`folder` None), which
    MKCOL makes a folder, MOVE of a folder a rename, and PUT a root-level file (see in_root_files)."""
    if not segments:
        raise BadRequest(f"no user in the URL: {mount.prefix}<user>/")
    if segments[0] != user:
        raise Forbidden(f"{user} cannot reach another user's files at {mount.prefix}{segments[0]}/")
    if len(segments) == 1:
        return Location(user, None, None, "", mount)
    top, folders = segments[1], list_folders(db, user)
    folder = next((f for f in folders if shown_name(f) == top and not is_root_files(f)), None)
    if folder is not None:
        path = normalize_path("/".join(segments[2:])) if len(segments) > 2 else ""
        return Location(user, top, folder, path, mount)
    path = normalize_path("/".join(segments[1:]))
    root_files = next((f for f in folders if is_root_files(f)), None)
    if len(segments) > 2 or (root_files is not None and _has(db, root_files.id, path)):
        return Location(user, "", root_files, path, mount)
    return Location(user, top, None, "", mount)


def _has(db: sqlite_utils.Database, folder: int, path: str) -> bool:
    """Whether the folder has a live entry at `path` or below it (an implied directory)."""
    return db.execute("SELECT 1 FROM entries WHERE folder_id = ? AND deleted = 0 AND (path = ? OR path GLOB ?) "
                      "LIMIT 1", [folder, path, parent_and_descendants_pattern(path)]).fetchone() is not None


def as_root_file(location: Location) -> Location:
    """A bare new name at the top as the root-level file it becomes (PUT, COPY and MOVE of a file)."""
    if location.folder is None and location.top and location.path == "":
        return replace(location, top="", path=normalize_path(location.top))
    return location


def placed(db: sqlite_utils.Database, location: Location) -> Location:
    """Where something written at `location` goes: a bare new name at the top becomes a root-level file,
    and ROOT_FILES is made when it is first needed (inside the caller's write transaction)."""
    location = as_root_file(location)
    if location.in_root_files and location.folder is None:
        folder, _ = open_or_create_folder(db, location.user, ROOT_FILES)
        location = replace(location, folder=folder)
    return location


def destination_segments(value: str | None, user: str) -> tuple[Mount, list[str]]:
    """The mount and segments of a Destination header (an absolute URL or path, under any mount). Only
    the path counts: behind the front end or a tunnel the host a client names is not one this daemon
    could check."""
    if not value:
        raise BadRequest("Destination header required")
    path = urlsplit(value).path
    if mount_of(path) is None:
        raise BadGateway(f"Destination is not a file URL of this server: {value[:200]!r}")
    return segments_of(path, user)
