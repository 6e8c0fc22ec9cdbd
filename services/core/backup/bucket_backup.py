"""`hearth backup --to s3://BUCKET/PREFIX`: the backup directory's layout (layout.py), in a bucket.

    PREFIX/backup.json                       the manifest, written last
    PREFIX/snapshots/STAMP/hearth.sqlite3    the database, hearth.toml and files/N, as in a directory
    PREFIX/chunks/ID                         every chunk, where a blob store in that bucket keeps them

The chunks are where [storage] blobs = "s3" with s3_prefix = PREFIX would look
(so a prefix is refused that holds this server's own chunks, whose unneeded ones
a backup would remove, or a bucket home's server/ and db/, which `hearth restore
--from` would take instead of the backup). An object store has no rename: the
snapshot is written into data_dir/run first and uploaded once every chunk is in
the bucket, under a name only the manifest written after it makes a backup. What
a killed run uploaded under another name is removed by the next one.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config
from ..db import BUSY_TIMEOUT_MS, db_path
from ..errors import BadRequest
from ..private import private_dir
from ..tree import BlobStore
from ..tree.s3store import S3Files, S3Location, S3Store
from .bucket import BucketHome
from .layout import MANIFEST, SNAPSHOTS, exclusive, parse_manifest

CHUNKS = "chunks/"
STAGING = "bucket-backup.partial"  # in data_dir/run: the snapshot before its upload
LOCK = "bucket-backup.lock"        # in data_dir/run
OURS = {MANIFEST, SNAPSHOTS + "/", CHUNKS}  # all a prefix holding a backup may hold


@dataclass(frozen=True)
class BackupBucket:
    """A backup at s3://BUCKET/PREFIX, made by this server (`config`: where its snapshot is staged)."""

    home: BucketHome
    config: Config

    @property
    def url(self) -> str:
        return self.home.url

    @property
    def chunks_name(self) -> str:
        return self.url + CHUNKS

    @property
    def files(self) -> S3Files:
        return S3Files(self.home.location)

    def chunk_store(self) -> BlobStore:
        return S3Store(self.home.location)

    def claim(self) -> None:
        """Check the bucket answers, the prefix holds nothing but an earlier backup, and it is not this
        server's own blob store (a backup there would remove the chunks it does not need)."""
        others = sorted(self.files.top_level() - OURS)
        if others:
            raise BadRequest(f"{self.url} holds other objects ({others[0]}, …) and no hearth backup: back up "
                             "into a new or empty prefix, or one an earlier `hearth backup` wrote (nothing was "
                             "written)")
        if _place(self.home.location) in {_place(location) for location in _stores_of(self.config)}:
            raise BadRequest(f"{self.url}{CHUNKS} is where this server keeps its chunks: back up into another "
                             "prefix or bucket (nothing was written)")

    def locked(self):
        """One bucket backup at a time from this server: two would remove each other's snapshot."""
        return exclusive(private_dir(self.config.data_path("run")) / LOCK,
                         "another `hearth backup` to a bucket is running on this server")

    def is_backup(self) -> bool:
        """Whether `hearth backup` wrote here (finished or not)."""
        return bool({MANIFEST, SNAPSHOTS + "/"} & self.files.top_level())

    def read_manifest(self) -> dict[str, Any]:
        """The finished backup's manifest. BadRequest when there is none or it is not ours."""
        raw = self.files.get(MANIFEST)
        return parse_manifest(raw, self.url, self.url + MANIFEST, raw is None and self.is_backup())

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """One PUT: the object is replaced whole, so the old backup stays complete until the new one is."""
        self.files.put(MANIFEST, json.dumps(manifest, indent=2).encode() + b"\n")

    def start_snapshot(self, name: str) -> Path:
        staging = self.config.data_path("run", STAGING)
        shutil.rmtree(staging, ignore_errors=True)  # what a killed run left
        return private_dir(staging)

    def finish_snapshot(self, partial: Path, name: str) -> None:
        files = self.files
        for path in sorted(p for p in partial.rglob("*") if p.is_file()):
            files.upload(f"{SNAPSHOTS}/{name}/{path.relative_to(partial)}", path)
        shutil.rmtree(partial)

    def drop_snapshots_except(self, keep: str | None) -> None:
        files = self.files
        for name in files.names(SNAPSHOTS + "/"):
            if keep is None or not name.startswith(f"{SNAPSHOTS}/{keep}/"):
                files.delete(name)

    def fetch_snapshot(self, manifest: dict[str, Any], into: Path) -> None:
        """Download the snapshot the manifest names (database, hearth.toml, files/N) into `into`."""
        files = self.files
        wanted = [manifest["database"]["file"], *(entry["stored"] for entry in manifest.get("named_files", []))]
        if manifest["config"]:
            wanted.append(manifest["config"])
        for name in wanted:
            private_dir((into / name).parent)
            if not files.download(f"{manifest['snapshot']}/{name}", into / name):
                raise BadRequest(f"{self.url}{manifest['snapshot']}/{name} is missing: the backup is damaged "
                                 "(nothing was changed)")


def _place(location: S3Location) -> tuple[str, str, str]:
    return location.endpoint, location.bucket, location.prefix


def _stores_of(config: Config) -> list[S3Location]:
    """The buckets this server's chunks are in: the configured store's, and a migration's both ends."""
    from ..blob_migration import read_migration
    from ..blobs import s3_location, store_settings

    settings = [store_settings(config)]
    if db_path(config.data_dir).exists():
        with closing(sqlite3.connect(str(db_path(config.data_dir)), timeout=BUSY_TIMEOUT_MS / 1000)) as db:
            migration = read_migration(db)
        if migration is not None:
            settings += [migration.source, migration.target]
    return [s3_location(each, "[storage]") for each in settings if each["blobs"] == "s3"]
