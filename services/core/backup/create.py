"""`hearth backup --to DIR|s3://BUCKET/PREFIX`: the database, the config and every chunk they need, into one place.

The order makes a half backup impossible to mistake for a whole one: the
snapshot is written under a name no manifest gives (a `.partial` directory, or
data_dir/run before its upload to a bucket), the chunks are copied (only those
the backup lacks: a run killed midway resumes where it stopped), the snapshot
is put in place, and the manifest naming it is written last. Until then the
previous backup's manifest, and its snapshot, stay as they were. Only afterwards
are the older snapshot and the chunks nothing references any more removed.
A directory and a bucket share this layout (layout.py, bucket_backup.py).
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..blobs import open_blob_store
from ..config import Config
from ..db import db_path
from ..errors import BadRequest
from ..private import private_dir
from .blob_copy import copy_chunks
from .layout import CONFIG, DATABASE, FORMAT, BackupDir
from .named_files import save_named_files
from .snapshot import copy_database, file_sha256, referenced_chunks

if TYPE_CHECKING:
    from .bucket_backup import BackupBucket

LAST_BACKUP = "last-backup.json"  # in data_dir/run: what `hearth backup status` reports


def backup_place(config: Config, to: str, *, endpoint: str | None = None,
                 region: str | None = None) -> BackupDir | BackupBucket:
    """The BackupDir or bucket_backup.BackupBucket that `to` (a directory or s3://BUCKET/PREFIX) names; a
    bucket is reached at `endpoint` in `region`, by default [storage] s3_endpoint and s3_region."""
    if not to.startswith("s3://"):
        if endpoint or region:
            raise BadRequest("--endpoint and --region go with --to s3://BUCKET/PREFIX")
        return BackupDir(Path(to).resolve())
    from .bucket import home_from
    from .bucket_backup import BackupBucket

    return BackupBucket(home_from(to, config, endpoint, region, "--to"), config)


def create_backup(config: Config, backup: BackupDir | BackupBucket, *, verify: bool = False,
                  progress: Callable[[int], Callable[[int], None]] = lambda total: (lambda n: None)) -> dict[str, Any]:
    """Back the server up into `backup` (backup_place); returns the manifest. `progress(total_chunks)` gives
    a step function."""
    backup.claim()
    with backup.locked():
        kept = _current_snapshot(backup)
        backup.drop_snapshots_except(kept)  # partial snapshots of killed runs
        started = datetime.now(timezone.utc)
        name = started.strftime("%Y%m%dT%H%M%S.%fZ")
        partial = backup.start_snapshot(name)
        copy_database(db_path(config.data_dir), partial / DATABASE)
        if config.path is not None and config.path.exists():
            _copy_file(config.path, partial / CONFIG)
        named = save_named_files(config, partial)
        ids = referenced_chunks(partial / DATABASE)
        manifest = {
            "format": FORMAT,
            "created_at": started.isoformat(timespec="seconds"),
            "snapshot": f"snapshots/{name}",
            "database": {"file": DATABASE, "size": (partial / DATABASE).stat().st_size,
                         "sha256": file_sha256(partial / DATABASE)},
            "config": CONFIG if (partial / CONFIG).exists() else None,
            "named_files": named,
            "chunks": len(ids),
            "counts": _counts(partial / DATABASE),
        }
        source, target = open_blob_store(config), backup.chunk_store()
        try:
            report = copy_chunks(source, target, ids, source_name=source.describe(), progress=progress(len(ids)),
                                 verify_present=verify)
            backup.finish_snapshot(partial, name)
            manifest["copied"] = {"chunks": report.copied, "bytes": report.copied_bytes,
                                  "already_there": report.present, "repaired": report.repaired}
            backup.write_manifest(manifest)
            backup.drop_snapshots_except(name)
            for stale in set(target.stored()) - ids:  # chunks only the dropped snapshot needed
                target.delete(stale)
        finally:
            source.close()
            target.close()
    _record_last_backup(config, backup.url, manifest)
    return manifest


def _current_snapshot(backup: BackupDir) -> str | None:
    try:
        return backup.read_manifest()["snapshot"].rpartition("/")[2]
    except (BadRequest, KeyError):  # no finished backup yet (or a damaged manifest): nothing to keep
        return None


def _copy_file(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)
    with open(target, "rb+") as out:
        os.fsync(out.fileno())


def _counts(path: Path) -> dict[str, int]:
    """A few numbers that let a person recognise the backup: who and how much is in it."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        count = lambda table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: E731
        return {"users": count("users"), "app_passwords": count("app_passwords"), "folders": count("folders"),
                "revisions": count("revisions")}
    finally:
        conn.close()


def _record_last_backup(config: Config, where: str, manifest: dict[str, Any]) -> None:
    run = config.data_path("run")
    private_dir(run)
    tmp = run / f".{LAST_BACKUP}.tmp"
    tmp.write_text(json.dumps({"dir": where, "created_at": manifest["created_at"],
                               "finished_at": time.time(), "chunks": manifest["chunks"]}))
    os.replace(tmp, run / LAST_BACKUP)


def last_backup(config: Config) -> dict[str, Any] | None:
    try:
        return json.loads(config.data_path("run", LAST_BACKUP).read_text())
    except (OSError, ValueError):
        return None
