"""A backup's layout, its manifest and the lock that keeps two backups out of each other's way.

One layout wherever the backup goes: backup.json (written last), snapshots/STAMP/ (the database,
hearth.toml and the files it names) and the chunks, in the store's own layout there: blobs/ab/cd/ID
in a directory (BackupDir, here), chunks/ID in a bucket (bucket_backup.BackupBucket). create.py and
restore.py work through the methods both share.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..durable import fsync_directory, sync_filesystem
from ..errors import BadRequest, Conflict
from ..private import private_dir
from ..tree import BlobStore, ChunkStore

FORMAT = 1
MANIFEST = "backup.json"
SNAPSHOTS = "snapshots"
BLOBS = "blobs"
DATABASE = "hearth.sqlite3"
CONFIG = "hearth.toml"
PARTIAL = ".partial"  # suffix of a snapshot directory still being written
LOCK = ".lock"


@dataclass(frozen=True)
class BackupDir:
    root: Path

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def blobs(self) -> Path:
        return self.root / BLOBS

    @property
    def snapshots(self) -> Path:
        return self.root / SNAPSHOTS

    def snapshot(self, name: str) -> Path:
        return self.snapshots / name

    def is_backup(self) -> bool:
        """Whether the directory was made by `hearth backup` (finished or not)."""
        return any((self.root / name).exists() for name in (MANIFEST, SNAPSHOTS, BLOBS))

    def claim(self) -> None:
        """Create the directory, or take an earlier backup's or an empty one; BadRequest for anything else,
        so a typo never litters someone's home directory with chunks."""
        if self.root.exists() and not self.root.is_dir():
            raise BadRequest(f"{self.root} is not a directory")
        if self.root.is_dir() and not self.is_backup() and any(self.root.iterdir()):
            raise BadRequest(f"{self.root} holds other files and no hearth backup: back up into a new or "
                             "empty directory, or one an earlier `hearth backup` wrote (nothing was written)")
        private_dir(self.root)

    @property
    def url(self) -> str:
        return str(self.root)

    @property
    def chunks_name(self) -> str:
        return str(self.blobs)

    def read_manifest(self) -> dict[str, Any]:
        """The finished backup's manifest. BadRequest when there is none or it is not ours."""
        try:
            raw = self.manifest_path.read_bytes()
        except FileNotFoundError:
            raw = None
        except OSError as error:
            raise BadRequest(f"{self.manifest_path}: unreadable: {error}") from None
        return parse_manifest(raw, self.url, str(self.manifest_path), self.is_backup())

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Replace the manifest atomically: the old backup stays complete until the new one is."""
        tmp = self.root / f".{MANIFEST}.tmp"
        with open(tmp, "w") as out:
            json.dump(manifest, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.manifest_path)
        fsync_directory(self.root)

    def chunk_store(self) -> BlobStore:
        return ChunkStore(self.blobs)

    def start_snapshot(self, name: str) -> Path:
        """The directory to write snapshot `name` into; finish_snapshot makes it the snapshot."""
        partial = self.snapshot(name + PARTIAL)
        private_dir(partial)
        return partial

    def finish_snapshot(self, partial: Path, name: str) -> None:
        sync_filesystem(self.root)  # the chunks and the snapshot's files, before its name says it is whole
        os.rename(partial, self.snapshot(name))
        fsync_directory(self.snapshots)

    def drop_snapshots_except(self, keep: str | None) -> None:
        """Remove every snapshot directory but `keep`: the partial ones of killed runs, and older ones."""
        if not self.snapshots.is_dir():
            return
        for entry in self.snapshots.iterdir():
            if entry.name != keep:
                shutil.rmtree(entry, ignore_errors=True)

    def locked(self):
        """Hold the directory's lock: two backups into one directory would remove each other's snapshot."""
        return exclusive(self.root / LOCK, f"another `hearth backup` is writing to {self.root}")


@contextmanager
def exclusive(path: Path, busy: str) -> Iterator[None]:
    """Hold an flock on `path` (let go by the kernel when the holder dies, even by kill -9); Conflict(`busy`)
    while another process holds it."""
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Conflict(busy) from None
        yield


def parse_manifest(raw: bytes | None, where: str, name: str, is_backup: bool) -> dict[str, Any]:
    """The manifest in `raw` (None: there is none) of the backup at `where`; BadRequest saying what is wrong."""
    if raw is None:
        what = ("a backup that did not finish (no backup.json): run `hearth backup` again to complete it"
                if is_backup else "no hearth backup")
        raise BadRequest(f"{where} holds {what}")
    try:
        manifest = json.loads(raw)
    except ValueError as error:
        raise BadRequest(f"{name}: unreadable: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadRequest(f"{name}: not a hearth backup manifest of format {FORMAT}")
    return manifest
