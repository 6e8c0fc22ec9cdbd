"""The export directory: created empty, filled file by file, never overwriting anything.

Each file is written to a temp file beside its final name, fsynced, then
linked into place: a hard link fails if the name exists, so even a file that
appeared meanwhile is never replaced. Filesystems without hard links (FAT and
exFAT on USB drives) fall back to a checked rename. The names are made durable
with one file-system sync (`sync`) rather than a directory fsync per file.
Every file written is recorded with its size and SHA-256 for the manifest.
"""
from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterable, Protocol

from ..durable import sync_filesystem
from ..errors import BadRequest, Conflict

_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK}


@dataclass(frozen=True)
class Written:
    path: str  # relative to the export directory, '/'-separated
    size: int
    sha256: str


class Target(Protocol):
    """Where an export goes, file by file: a directory (ExportTarget) or an archive stream
    (archive.ZipTarget). `written` lists every file written so far, for the manifest."""

    written: list[Written]

    def directory(self, relative: str) -> object: ...

    def write(self, relative: str, pieces: Iterable[bytes], *, mtime_ns: int | None = None,
              executable: bool = False) -> Written: ...

    def sync(self) -> None: ...


def safe_parts(relative: str) -> tuple[str, ...]:
    """The segments of an export path; BadRequest for anything that could leave the export's root."""
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise BadRequest(f"unsafe export path {relative!r}")
    return parts


class ExportTarget:
    """An export directory that was empty when we started; files go in by relative path."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.written: list[Written] = []

    @classmethod
    def create(cls, root: Path) -> "ExportTarget":
        """Create `root` (private to its owner), or take it if it is an empty directory.

        BadRequest if it is a file or holds anything: an export never mixes with or replaces
        other files, so the fix is another directory, not a retry."""
        root = Path(root)
        if root.exists() and not root.is_dir():
            raise BadRequest(f"{root} is not a directory")
        try:
            root.mkdir(mode=0o700, parents=True)
        except FileExistsError:
            if any(root.iterdir()):
                raise BadRequest(f"{root} is not empty: export into a new or empty directory "
                                 "(nothing was written)") from None
        return cls(root)

    def directory(self, relative: str) -> Path:
        """Make (with parents) a directory of the export and return it."""
        path = self._inside(relative)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, relative: str, pieces: Iterable[bytes], *, mtime_ns: int | None = None,
              executable: bool = False) -> Written:
        """Write the concatenated `pieces` as file `relative`; Conflict if that name exists."""
        target = self._inside(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        tmp = target.parent / f".{target.name[:200]}.{secrets.token_hex(4)}.export-tmp"
        try:
            with open(tmp, "xb") as out:
                for piece in pieces:
                    out.write(piece)
                    digest.update(piece)
                    size += len(piece)
                if executable:
                    mode = stat.S_IMODE(os.fstat(out.fileno()).st_mode)
                    os.fchmod(out.fileno(), mode | (mode & 0o444) >> 2)  # x wherever r is, as git does
                out.flush()
                os.fsync(out.fileno())
            if mtime_ns is not None:
                os.utime(tmp, ns=(mtime_ns, mtime_ns))
            self._place(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        done = Written(relative, size, digest.hexdigest())
        self.written.append(done)
        return done

    def _place(self, tmp: Path, target: Path) -> None:
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise Conflict(f"{target} already exists: not overwritten") from None
        except OSError as error:
            if error.errno not in _NO_HARD_LINKS:
                raise
            if os.path.lexists(target):
                raise Conflict(f"{target} already exists: not overwritten") from None
            os.rename(tmp, target)

    def sync(self) -> None:
        """Make every name written so far durable: one file-system sync instead of one per directory."""
        sync_filesystem(self.root)

    def _inside(self, relative: str) -> Path:
        """The path of `relative` under the root; BadRequest for anything that could leave it."""
        return self.root.joinpath(*safe_parts(relative))


def disk_name(name: str) -> str:
    """A stored name (folder, calendar) as one safe path segment: '.' and '..' would leave their
    parent, so they are written percent-encoded; every other name is kept as it is."""
    if name in (".", ".."):
        return name.replace(".", "%2E")
    return name
