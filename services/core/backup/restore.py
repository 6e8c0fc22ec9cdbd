"""`hearth restore --from DIR|REPLICA|s3://BUCKET/PREFIX`: a dead server's data, brought back on a new machine.

Only into a data directory that is absent or empty: a restore never mixes with,
or replaces, a server's data. Everything is assembled in a sibling directory
(`.NAME.restoring`) and renamed into place at the very end, so a restore that
was killed leaves nothing `hearth up` would start on; running it again starts
over. The config file is brought back first when there is none yet.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import Config, find_config_path, load_config
from ..db import DB_NAME, migrate
from ..durable import fsync_directory, sync_filesystem
from ..errors import BadRequest, CommandError, Conflict
from ..private import make_private, private_dir
from ..tree import BlobStore, ChunkStore
from .blob_copy import CopyReport, copy_chunks
from .layout import CONFIG, BackupDir
from .named_files import restore_named_files
from .snapshot import check_database, file_sha256, referenced_chunks


@dataclass
class RestoreReport:
    config: Path
    config_restored: bool
    named_files: list[Path]   # files hearth.toml names (TLS key, secrets), put back
    kept_files: list[Path]    # ... and those left alone because a file was already there
    replica: str | None       # [backup] replica of the restored config, when the database came from elsewhere
    data_dir: Path
    users: int
    chunks: int
    copied_bytes: int


@dataclass
class Origin:
    """Where a restore takes each part from: a backup directory, a replica plus one, or a bucket home."""

    snapshot: Path               # holds hearth.toml (when `has_config`) and the named files (files/N)
    has_config: bool
    named_files: list[dict]
    write_database: Callable[[Path], None]   # the database into the new file given
    chunks: Callable[[Config], tuple[BlobStore, str]]  # the store holding the chunks (the restored config
    #                                                     given) and how to name it
    replicated: bool             # the database came from a replica (its newest state), not a snapshot


def restore(config_arg: str | None, source: str, blobs_from: str | None = None, *, endpoint: str | None = None,
            region: str | None = None,
            progress: Callable[[int], Callable[[int], None]] = lambda total: (lambda n: None)) -> RestoreReport:
    """Restore from a backup directory, from a Litestream replica URL plus a backup directory's chunks,
    or from a bucket home s3://BUCKET/PREFIX (reached at `endpoint`/`region`, default [storage]'s)."""
    with tempfile.TemporaryDirectory(prefix="hearth-restore-") as scratch:
        if source.startswith("s3://"):
            origin = _bucket_origin(config_arg, source, blobs_from, endpoint, region, Path(scratch))
        else:
            origin = _directory_origin(source, blobs_from)
        return _restore_from(config_arg, origin, progress)


def _directory_origin(source: str, blobs_from: str | None) -> Origin:
    from .replica import is_replica_url

    replica = is_replica_url(source)
    if replica and not blobs_from:
        raise BadRequest("a Litestream replica holds the database only: name the backup directory that holds "
                         "the chunks (and the config) with --blobs DIR")
    backup = BackupDir(Path(blobs_from or source).resolve())
    manifest = backup.read_manifest()
    return _backup_origin(backup, manifest, backup.root / manifest["snapshot"], source if replica else None)


def _backup_origin(backup, manifest: dict, snapshot: Path, replica: str | None) -> Origin:
    """A backup's snapshot (in a local directory `snapshot`) and chunks, or its chunks and config with the
    database from the Litestream `replica` URL."""
    from .replica import restore_replica

    def write_database(database: Path) -> None:
        if replica:
            restore_replica({"url": replica}, database)
        else:
            _copy_snapshot(snapshot / manifest["database"]["file"], database, manifest["database"]["sha256"])

    return Origin(snapshot=snapshot, has_config=bool(manifest["config"]),
                  named_files=manifest.get("named_files", []), write_database=write_database,
                  chunks=lambda config: (backup.chunk_store(), backup.chunks_name), replicated=bool(replica))


def _bucket_origin(config_arg: str | None, source: str, blobs_from: str | None, endpoint: str | None,
                   region: str | None, scratch: Path) -> Origin:
    """From a bucket home: the config set from its server/, the database from its db/ replica, the chunks
    from its chunks/ (or, for a server that kept them on local disk, from the backup directory --blobs names).
    From a prefix holding a `hearth backup --to s3://…`: that backup, as from a directory."""
    from ..tree.s3store import S3Files, S3Store
    from .bucket import MANIFEST, download_server_files, home_from
    from .bucket_backup import BackupBucket
    from .replica import restore_replica

    local = load_config(config_arg)
    home = home_from(source, local, endpoint, region, "--from")
    backup = BackupBucket(home, local)
    if S3Files(home.location).get(MANIFEST) is None and backup.is_backup():
        manifest = backup.read_manifest()
        backup.fetch_snapshot(manifest, scratch)
        return _backup_origin(backup, manifest, scratch, None)
    manifest = download_server_files(home, scratch)

    def chunks(config: Config) -> tuple[BlobStore, str]:
        if config.values["storage"]["blobs"] == "s3":
            return S3Store(home.location), home.url + "chunks/"
        if not blobs_from:
            raise BadRequest(f"the restored hearth.toml keeps chunks on local disk ([storage] blobs = \"local\"), "
                             f"so {source} holds none: name the backup directory that holds them with --blobs DIR")
        blobs = BackupDir(Path(blobs_from).resolve()).blobs
        return ChunkStore(blobs), str(blobs)

    return Origin(snapshot=scratch, has_config=bool(manifest["config"]), named_files=manifest["named_files"],
                  write_database=lambda database: restore_replica(home.litestream_replica(), database),
                  chunks=chunks, replicated=True)


def _restore_from(config_arg: str | None, origin: Origin,
                  progress: Callable[[int], Callable[[int], None]]) -> RestoreReport:
    from .replica import replica_url

    config, config_path, bring_config = _target_config(config_arg, origin.snapshot / CONFIG if origin.has_config
                                                       else None)
    data_dir = config.data_dir
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise Conflict(f"{data_dir} is not empty: restore only into a new or empty data directory "
                       "(nothing was changed)")
    source, source_name = origin.chunks(config)
    staging = data_dir.parent / f".{data_dir.name}.restoring"
    shutil.rmtree(staging, ignore_errors=True)  # what a killed restore left
    target = _restored_store(config, staging)
    try:
        chunks = _assemble(staging, origin, source, source_name, progress, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        target.close()
        source.close()
    if bring_config:
        _place_config(origin.snapshot / CONFIG, config_path)
    named, kept = restore_named_files(config, origin.snapshot, origin.named_files)
    if data_dir.exists():
        data_dir.rmdir()  # empty, checked above
    os.rename(staging, data_dir)
    fsync_directory(data_dir.parent)
    return RestoreReport(config=config_path, config_restored=bring_config, named_files=named, kept_files=kept,
                         data_dir=data_dir, replica=None if origin.replicated else replica_url(config),
                         users=_count_users(data_dir / "db" / DB_NAME), chunks=chunks.copied + chunks.present,
                         copied_bytes=chunks.copied_bytes)


def _restored_store(config: Config, staging: Path) -> BlobStore:
    """Where the restored chunks go: the staged data directory's blobs for a local store; the configured
    object store otherwise (content-addressed, so chunks already in the bucket are not copied again)."""
    if config.values["storage"]["blobs"] == "local":
        return ChunkStore(staging / "blobs")
    from ..blobs import open_blob_store

    return open_blob_store(config)


def _assemble(staging: Path, origin: Origin, source: BlobStore, source_name: str,
              progress: Callable[[int], Callable[[int], None]], target: BlobStore) -> CopyReport:
    """The restored data directory, complete, at `staging`: the database (from the snapshot or the
    replica), checked and migrated, and every chunk it references, checked."""
    database = staging / "db" / DB_NAME
    private_dir(database.parent)
    origin.write_database(database)
    ids = referenced_chunks(database)
    report = copy_chunks(source, target, ids, source_name=source_name, progress=progress(len(ids)),
                         allow_missing=True)
    if report.missing:
        raise CommandError(f"{len(report.missing)} of the {len(ids)} chunks the database needs are not in "
                           f"{source_name} (the first: {report.missing[0]}): that backup is older than the "
                           "database; restore from a newer backup (nothing was changed)")
    from ..schema import MIGRATION_SETS

    migrate(database, MIGRATION_SETS)  # a backup made by an older hearth meets this one's schema
    for sub in ("run", "log"):
        private_dir(staging / sub)
    make_private(staging)
    sync_filesystem(staging)
    return report


def _target_config(config_arg: str | None, backed_up: Path | None) -> tuple[Config, Path, bool]:
    """The config the restored server will run with, its path, and whether the backup's copy goes there.

    A config file already on the new machine wins (its data_dir says where to restore); without one,
    the backed-up file is read as if it were already in place, so its relative paths resolve there."""
    path, _ = find_config_path(config_arg)
    path = path.resolve()
    if path.exists() or backed_up is None:
        return load_config(path if path.exists() else config_arg), path, False
    config = load_config(backed_up)
    return dataclasses.replace(config, path=path, base_dir=path.parent), path, True


def _copy_snapshot(source: Path, target: Path, sha256: str) -> None:
    shutil.copyfile(source, target)
    os.chmod(target, 0o600)
    if file_sha256(target) != sha256:
        raise CommandError(f"{source} does not match the SHA-256 its backup.json records: the backup is "
                           "damaged (nothing was changed)")
    conn = sqlite3.connect(str(target))
    try:
        check_database(conn, source)
    finally:
        conn.close()


def _place_config(source: Path, target: Path) -> None:
    """Write the backed-up config at `target`, never over a file that appeared meanwhile."""
    private_dir(target.parent)
    tmp = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o600)
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise Conflict(f"{target} appeared while restoring: not overwritten") from None
    finally:
        tmp.unlink(missing_ok=True)


def _count_users(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM users").fetchone()[0]
    finally:
        conn.close()
