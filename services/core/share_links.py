"""Share links as rows: create, list, change, revoke, find by token, count downloads. No HTTP.

In core because two daemons serve them: the files daemon (the public pages,
the owner's /files/api/v1/links) and the API daemon (the Nextcloud apps' OCS
share API).

Like services.core.accounts, every function takes a sqlite_utils.Database and
leaves the transaction to the caller; argon2 hashing of a link password is
slow, so the caller hashes before the write (`accounts.hash_password`).

A token is the whole secret of a link, so it is stored like an app password:
only its SHA-256 (it is random enough that a fast hash suffices) and its first
TOKEN_SHOWN characters, which tell the owner's links apart (`/s/Zq3v…`) but
open nothing. The full token exists only in the answer that created the link
and in the visitor's URL.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlite_utils

from services.core.accounts import now_iso, token_hash
from services.core.errors import BadRequest, HTTPError, NotFound
from services.core.tree import normalize_path
from services.core.tree.paths import parent_and_descendants_pattern

MODES = ("read", "read-write", "upload-only")
MAX_LABEL_LENGTH = 100
TOKEN_SHOWN = 4
_DURATION = re.compile(r"(\d{1,5})([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class Gone(HTTPError):
    """The link was revoked or has expired: 410, and it will not come back."""

    status, code = 410, "gone"


@dataclass(frozen=True)
class Link:
    id: int
    token: str | None  # known only when the link was just created or opened by its token
    token_prefix: str
    owner: str
    folder_id: int
    folder_name: str
    path: str  # folder-relative; '' is the folder itself
    is_dir: bool
    mode: str
    label: str
    has_password: bool
    password_hash: str | None
    expires_at: str | None
    downloads: int
    created_at: str
    revoked_at: str | None

    @property
    def shown_url(self) -> str:
        """How the link is named once created: the start of its URL, which opens nothing."""
        return f"/s/{self.token_prefix}…"

    @property
    def name(self) -> str:
        """What the public page calls the shared item: its own name, never the path above it."""
        return self.path.rsplit("/", 1)[-1] if self.path else self.folder_name

    def inside(self, relative: str) -> str:
        """The folder-relative path of `relative` (a path below the shared item), confined to it.

        `relative` comes from a public URL: it is normalised (no '..', '.', empty
        segments, backslashes, NUL or leading '/') and then joined under the
        shared path, so the result can only ever name the shared item or
        something below it. BadRequest otherwise.
        """
        if not relative:
            return self.path
        relative = normalize_path(relative)
        joined = f"{self.path}/{relative}" if self.path else relative
        if self.path and not joined.startswith(self.path + "/"):
            raise BadRequest("path outside the shared folder")
        return joined


def parse_expiry(text: str | None, now: datetime | None = None) -> str | None:
    """An expiry as stored (UTC, now_iso form) from '7d', '12h', '30m', '2w', a date or an ISO time.

    A date means the end of that day in UTC. BadRequest for anything else or a time in the past.
    """
    if text is None or not text.strip():
        return None
    text, now = text.strip(), now or datetime.now(timezone.utc)
    duration = _DURATION.fullmatch(text)
    if duration:
        moment = now + timedelta(**{_UNITS[duration.group(2)]: int(duration.group(1))})
    else:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"expiry {text!r} is not a duration (7d, 12h, 30m, 2w), a date or an ISO "
                             "date and time") from None
        if len(text) == 10:  # a bare date: valid through that whole day
            moment = moment.replace(tzinfo=timezone.utc) + timedelta(days=1)
        elif moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
    if moment <= now:
        raise BadRequest(f"expiry {text!r} is in the past")
    return now_iso(moment)


def _check_label(label: str | None) -> str:
    label = (label or "").strip()
    if len(label) > MAX_LABEL_LENGTH:
        raise BadRequest(f"label is too long: at most {MAX_LABEL_LENGTH} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in label):
        raise BadRequest("label must not contain control characters")
    return label


def create_link(db: sqlite_utils.Database, owner: str, folder_id: int, path: str, *, mode: str = "read",
                password_hash: str | None = None, expires_at: str | None = None,
                label: str | None = None) -> Link:
    """A new link to `path` ('' for the whole folder) in a folder `owner` owns.

    NotFound if the folder is not the owner's or the path does not exist,
    BadRequest for an unknown mode, a file shared with a mode other than read,
    or a bad label.
    """
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    label = _check_label(label)
    folder = db.execute("SELECT name FROM folders WHERE id = ? AND owner = ? AND deleted_at IS NULL",
                        [folder_id, owner]).fetchone()
    if folder is None:
        raise NotFound(f"{owner!r} has no folder {folder_id}")
    path = normalize_path(path.strip("/")) if path.strip("/") else ""
    is_dir = True
    if path:
        kind = entry_kind(db, folder_id, path)
        if kind is None:
            raise NotFound(f"no {path} in folder {folder[0]!r}")
        is_dir = kind == "dir"
    if not is_dir and mode != "read":
        raise BadRequest(f"a file can only be shared read-only ({mode!r} is for folders)")
    token = secrets.token_urlsafe(24)
    cursor = db.execute("""
        INSERT INTO share_links (token_hash, token_prefix, owner, folder_id, path, is_dir, mode, label,
                                 password_hash, expires_at, created_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        [token_hash(token), token[:TOKEN_SHOWN], owner, folder_id, path, int(is_dir), mode, label,
         password_hash, expires_at, now_iso()])
    return _link(next(iter(db.query(f"{_SELECT} WHERE l.id = ?", [cursor.lastrowid]))), token)


def entry_kind(db: sqlite_utils.Database, folder_id: int, path: str) -> str | None:
    """'file' or 'dir' for the live entry at `path`, None if there is none; a directory without an
    entry of its own (sync commits file by file) counts when something lives below it."""
    row = db.execute("SELECT kind FROM entries WHERE folder_id = ? AND path = ? AND deleted = 0",
                     [folder_id, path]).fetchone()
    if row is not None:
        return row[0]
    below = db.execute("SELECT 1 FROM entries WHERE folder_id = ? AND deleted = 0 AND path GLOB ? LIMIT 1",
                       [folder_id, parent_and_descendants_pattern(path)]).fetchone()
    return "dir" if below else None


def find_link(db: sqlite_utils.Database, owner: str, link_id: int) -> Link:
    """One of the owner's links that is not revoked; NotFound otherwise."""
    row = next(iter(db.query(_SELECT + " WHERE l.id = ? AND l.owner = ? AND l.revoked_at IS NULL",
                             [link_id, owner])), None)
    if row is None:
        raise NotFound(f"{owner!r} has no active share link {link_id}")
    return _link(row)


_UNCHANGED = object()


def update_link(db: sqlite_utils.Database, owner: str, link_id: int, *, mode: str | None = None,
                password_hash=_UNCHANGED, expires_at=_UNCHANGED) -> Link:
    """Change a link's mode, password (None removes it) or expiry (None: never); the token stays.

    NotFound if not the owner's active link, BadRequest for an unknown mode or a mode other than
    read on a file.
    """
    link = find_link(db, owner, link_id)
    changes: dict = {}
    if mode is not None:
        if mode not in MODES:
            raise BadRequest(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if not link.is_dir and mode != "read":
            raise BadRequest(f"a file can only be shared read-only ({mode!r} is for folders)")
        changes["mode"] = mode
    if password_hash is not _UNCHANGED:
        changes["password_hash"] = password_hash
    if expires_at is not _UNCHANGED:
        changes["expires_at"] = expires_at
    if changes:
        db["share_links"].update(link_id, changes)
    return find_link(db, owner, link_id)


def list_links(db: sqlite_utils.Database, owner: str) -> list[Link]:
    """Every link the owner made and has not revoked, oldest first (expired ones included)."""
    return [_link(row) for row in db.query(
        _SELECT + " WHERE l.owner = ? AND l.revoked_at IS NULL ORDER BY l.id", [owner])]


def revoke_link(db: sqlite_utils.Database, owner: str, link_id: int) -> None:
    """Revoke one of the owner's links at once; NotFound if not theirs or already revoked."""
    cursor = db.execute("UPDATE share_links SET revoked_at = ? WHERE id = ? AND owner = ? AND revoked_at IS NULL",
                        [now_iso(), link_id, owner])
    if cursor.rowcount != 1:
        raise NotFound(f"{owner!r} has no active share link {link_id}")


def open_link(db: sqlite_utils.Database, token: str, now: str | None = None) -> Link:
    """The usable link with this token: NotFound if there is none, Gone if revoked or expired."""
    if not isinstance(token, str) or len(token) > 100:
        raise NotFound("no such link")
    row = next(iter(db.query(_SELECT + " WHERE l.token_hash = ?", [token_hash(token)])), None)
    if row is None:
        raise NotFound("no such link")
    link = _link(row, token)
    if link.revoked_at is not None:
        raise Gone("this link was revoked by its owner")
    if row["folder_deleted_at"] is not None:
        raise Gone("the folder of this link was deleted by its owner")
    if link.expires_at is not None and link.expires_at <= (now or now_iso()):
        raise Gone("this link has expired")
    return link


def count_download(db: sqlite_utils.Database, link_id: int) -> None:
    db.execute("UPDATE share_links SET downloads = downloads + 1 WHERE id = ?", [link_id])


def delete_links_of(db: sqlite_utils.Database, user: dict) -> None:
    """Remove every link a user made (for accounts.USER_DATA_DELETERS)."""
    db.execute("DELETE FROM share_links WHERE owner = ?", [user["name"]])


_SELECT = """SELECT l.*, f.name AS folder_name, f.deleted_at AS folder_deleted_at
             FROM share_links l JOIN folders f ON f.id = l.folder_id"""


def _link(row: dict, token: str | None = None) -> Link:
    return Link(row["id"], token, row["token_prefix"], row["owner"], row["folder_id"], row["folder_name"], row["path"],
                bool(row["is_dir"]), row["mode"], row["label"], row["password_hash"] is not None,
                row["password_hash"], row["expires_at"], row["downloads"], row["created_at"],
                row["revoked_at"])
