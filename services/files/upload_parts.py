"""The parts of a chunked upload, kept as files until the client asks for the whole (storage only: no HTTP).

An upload folder is `<data>/uploads/<user>/<id>/`, one file per part named as
the client numbered it (`00000000`, `000001`, `00001`: digits, read as a
number). A part is written to a temporary name and renamed into place once
complete, so an interrupted part leaves nothing and the folder only ever
lists whole parts: what a resuming client reads back to learn what it still
has to send. Nothing here is in the journal: parts are not the user's files
until the final MOVE streams them, in numeric order, through the chunker
into the chunk store (services/files/chunked.py), which is also when the
quota counts them, once.

A folder untouched for EXPIRY_SECONDS (24 h, as Nextcloud) is abandoned:
`expire` removes it (the files daemon's hourly pass, and each new upload of
the same user).
"""
from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from services.core.errors import BadRequest, NotFound
from services.core.private import DIR_MODE, FILE_MODE, private_dir

EXPIRY_SECONDS = 24 * 3600
_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
_PART = re.compile(r"[0-9]{1,16}")
_TEMP = ".part-"  # a part being received; never listed, removed with its folder


def check_id(upload_id: str) -> str:
    if not _ID.fullmatch(upload_id):
        raise BadRequest(f"an upload id is 1 to 100 letters, digits, '.', '_' or '-', not {upload_id[:100]!r}")
    return upload_id


def check_part(name: str) -> str:
    if not _PART.fullmatch(name):
        raise BadRequest(f"a chunk is named by its number (digits), not {name[:100]!r}")
    return name


@dataclass(frozen=True)
class Part:
    name: str
    size: int
    mtime: float


class UploadFolders:
    """One user's upload folders under `root` (<data>/uploads/<user>)."""

    def __init__(self, root: Path):
        self.root = root

    def folder(self, upload_id: str) -> Path:
        return self.root / check_id(upload_id)

    def exists(self, upload_id: str) -> bool:
        return self.folder(upload_id).is_dir()

    def create(self, upload_id: str) -> bool:
        """Make the folder (private, as all data: services/core/private.py); False when it was there already."""
        path = self.folder(upload_id)
        private_dir(path.parent)
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:
            return False
        return True

    def parts(self, upload_id: str) -> list[Part]:
        """The whole parts received, in numeric order; NotFound without the folder."""
        path = self.folder(upload_id)
        try:
            entries = list(os.scandir(path))
        except FileNotFoundError:
            raise NotFound(f"no upload {upload_id}") from None
        found = []
        for entry in entries:
            if _PART.fullmatch(entry.name):
                stat = entry.stat()
                found.append(Part(entry.name, stat.st_size, stat.st_mtime))
        return sorted(found, key=lambda part: (int(part.name), part.name))

    def held_bytes(self, skip: tuple[str, str] | None = None) -> int:
        """What all of the user's upload folders hold, but for the part `skip` (upload id, name) that a
        new body is about to replace."""
        total = 0
        for upload in _subdirectories(self.root):
            try:
                parts = self.parts(upload.name)
            except NotFound:  # removed meanwhile (finished, aborted or expired)
                continue
            total += sum(part.size for part in parts if (upload.name, part.name) != skip)
        return total

    def part_writer(self, upload_id: str, name: str) -> "PartWriter":
        folder = self.folder(upload_id)
        private_dir(folder)  # a chunk PUT without MKCOL makes the folder (Nextcloud does)
        return PartWriter(folder / check_part(name))

    def remove_part(self, upload_id: str, name: str) -> bool:
        try:
            (self.folder(upload_id) / check_part(name)).unlink()
        except FileNotFoundError:
            return False
        return True

    def remove(self, upload_id: str) -> bool:
        """Drop the folder and its parts; False when there was none."""
        path = self.folder(upload_id)
        if not path.is_dir():
            return False
        shutil.rmtree(path)
        return True

    def reader(self, upload_id: str, parts: list[Part]) -> io.RawIOBase:
        """The parts one after the other, as one stream (each file open only while it is read)."""
        return _Concatenated([self.folder(upload_id) / part.name for part in parts])


def expire(uploads_root: Path, now: float | None = None, user: str | None = None) -> int:
    """Remove the upload folders (every user's, or one user's) untouched for EXPIRY_SECONDS: how many."""
    cutoff = (time.time() if now is None else now) - EXPIRY_SECONDS
    users = [uploads_root / user] if user is not None else _subdirectories(uploads_root)
    removed = 0
    for user_root in users:
        for folder in _subdirectories(user_root):
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed += 1
    return removed


def _subdirectories(path: Path) -> Iterator[Path]:
    try:
        return iter([Path(entry.path) for entry in os.scandir(path) if entry.is_dir()])
    except FileNotFoundError:
        return iter([])


class PartWriter:
    """A part received piece by piece into a temporary file, put in place by `finish` (durably), or
    removed by `abandon`. Appending touches the folder, so an upload in progress does not expire."""

    def __init__(self, target: Path):
        self.target = target
        self.temp = target.with_name(f"{_TEMP}{secrets.token_hex(6)}-{target.name}")
        self.file = os.fdopen(os.open(self.temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE), "wb")
        self.size = 0

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.size += len(data)

    def finish(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.temp, self.target)

    def abandon(self) -> None:
        self.file.close()
        self.temp.unlink(missing_ok=True)


class _Concatenated(io.RawIOBase):
    def __init__(self, paths: list[Path]):
        self.paths, self.current = list(paths), None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self.current is None:
                if not self.paths:
                    return 0
                self.current = open(self.paths.pop(0), "rb")
            count = self.current.readinto(buffer)
            if count:
                return count
            self.current.close()
            self.current = None

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None
        super().close()
