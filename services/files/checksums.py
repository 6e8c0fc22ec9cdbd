"""OC-Checksum: the digest a Nextcloud or ownCloud client sends with its upload, checked against the bytes.

The header is `TYPE:hex` (`SHA1:2fd4…`; the desktop client's default), TYPE one
of SHA1, MD5, Adler32, SHA256, SHA3-256, in any case. The digest is computed
while the body streams through the chunker, and a mismatch refuses the upload
before anything is published: a file the client did not send is never stored.
A verified checksum is kept for the revision it came with (files_checksums),
so a later change of the file, which makes a new revision, never shows a
stale one. A revision made of the same bytes (a MOVE or COPY, which commit the
same chunk list under another path) is given its source's (`carry`).
"""
from __future__ import annotations

import hashlib
import io
import zlib
from dataclasses import dataclass, field
from typing import Callable

import sqlite_utils
from aiohttp import web

from services.core.errors import BadRequest

HEADER = "OC-Checksum"


class _Adler32:
    def __init__(self):
        self.value = 1

    def update(self, data) -> None:
        self.value = zlib.adler32(data, self.value)

    def hexdigest(self) -> str:
        return f"{self.value:08x}"


ALGORITHMS: dict[str, Callable] = {"SHA1": hashlib.sha1, "MD5": hashlib.md5, "ADLER32": _Adler32,
                                   "SHA256": hashlib.sha256, "SHA3-256": hashlib.sha3_256}


@dataclass
class Expected:
    """The digest a request announced, and the running digest of the bytes received."""

    kind: str
    hex: str
    digest: object = field(init=False)

    def __post_init__(self):
        self.digest = ALGORITHMS[self.kind]()

    @property
    def text(self) -> str:
        return f"{self.kind}:{self.hex}"

    def check(self) -> None:
        if self.digest.hexdigest() != self.hex:
            raise BadRequest(f"the received bytes do not match the {HEADER} {self.kind}:{self.hex}; "
                             "nothing was stored")


def expected(request: web.Request) -> Expected | None:
    """The request's OC-Checksum, or None; BadRequest for a malformed one (checked before the body is read)."""
    value = request.headers.get(HEADER)
    if value is None or not value.strip():
        return None
    kind, sep, digest = value.strip().partition(":")
    kind, digest = kind.strip().upper(), digest.strip().lower()
    if not sep or kind not in ALGORITHMS or not digest or any(c not in "0123456789abcdef" for c in digest):
        raise BadRequest(f"{HEADER} must be TYPE:hex with TYPE one of {', '.join(ALGORITHMS)}, "
                         f"not {value.strip()[:80]!r}")
    return Expected(kind, digest)


class Digesting(io.RawIOBase):
    """A stream that feeds what is read from `raw` to `expected`'s digest on the way."""

    def __init__(self, raw: io.RawIOBase, expected: Expected):
        self.raw, self.expected = raw, expected

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        if count:
            self.expected.digest.update(memoryview(buffer)[:count])
        return count


def keep(db: sqlite_utils.Database, revision_id: int, checksum: Expected) -> None:
    """Record the verified checksum of the revision the upload made."""
    db.execute("INSERT OR REPLACE INTO files_checksums (revision_id, checksum) VALUES (?, ?)",
               [revision_id, checksum.text])


def checksums_of(db: sqlite_utils.Database, revision_ids) -> dict[int, str | None]:
    """{revision id: `TYPE:hex` as the client sent it with those bytes, or None} for every id asked, in
    a query per 900 (a listing's files at once)."""
    found: dict[int, str | None] = dict.fromkeys(revision_ids)
    ids = list(found)
    for start in range(0, len(ids), 900):  # under SQLite's bound-parameter limit
        batch = ids[start:start + 900]
        found.update(db.execute(f"""SELECT revision_id, checksum FROM files_checksums
                                    WHERE revision_id IN ({",".join("?" * len(batch))})""", batch).fetchall())
    return found


def carry(db: sqlite_utils.Database, source_revision: int, new_revision: int) -> None:
    """Give `new_revision` the checksum of `source_revision`: only for a revision of the very same chunks."""
    db.execute("""INSERT OR REPLACE INTO files_checksums (revision_id, checksum)
                  SELECT ?, checksum FROM files_checksums WHERE revision_id = ?""", [new_revision, source_revision])
