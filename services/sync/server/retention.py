"""Scheduled retention and garbage collection inside the sync daemon.

Every [sync] gc_interval seconds: drop revisions that stopped being current
more than keep_versions_days ago (expire_versions) and folders deleted longer
ago than that (purge_deleted_folders), then delete chunks nothing
references whose upload lease (gc_grace) ran out (collect_chunks). Both work
in small write transactions, so commits queue behind the writer for a few
milliseconds at most, never for a whole sweep; listing the store's files
happens outside the write lock, on a thread.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from aiohttp import web

from services.core.config import Config
from services.core.db import Database
from services.core.http import DATABASE
from services.core.periodic import non_negative, periodic_context
from services.core.tree import BlobStore, collect_chunks, expire_versions, purge_deleted_folders

from .common import STORE

log = logging.getLogger("sync")

BATCH = 500  # revisions dropped or chunks examined per write transaction


@dataclass(frozen=True)
class Retention:
    keep_versions_days: int  # 0: keep forever
    interval: int            # seconds; 0: no scheduler
    grace: int               # seconds

    @classmethod
    def of(cls, config: Config) -> "Retention":
        """The [sync] retention keys; a negative one is a configuration error (exit 2 at start)."""
        section = non_negative(config, "sync", ("keep_versions_days", "gc_interval", "gc_grace"))
        return cls(section["keep_versions_days"], section["gc_interval"], section["gc_grace"])


async def sweep(database: Database, store: BlobStore, retention: Retention) -> tuple[int, int]:
    """One retention and GC pass; (revisions dropped, chunks deleted)."""
    expired = 0
    if retention.keep_versions_days > 0:
        older_than = datetime.now(timezone.utc) - timedelta(days=retention.keep_versions_days)
        while (dropped := await database.write(lambda db: expire_versions(db, older_than, limit=BATCH))):
            expired += dropped
            if dropped < BATCH:
                break
        while await database.write(lambda db: purge_deleted_folders(db, older_than)):
            pass  # one folder per transaction: a big one must not hold the writer for long
    cutoff = time.time() - retention.grace
    candidates = store.written_before(cutoff)  # walked on worker threads, one batch at a time
    collected = 0
    while batch := await asyncio.to_thread(lambda: list(itertools.islice(candidates, BATCH))):
        collected += len(await database.write(lambda db: collect_chunks(db, store, batch, cutoff)))
    return expired, collected


def retention_context(config: Config):
    """A cleanup_ctx entry running the schedule from startup to shutdown (config checked now)."""
    retention = Retention.of(config)

    async def one_pass(app: web.Application) -> None:
        started = time.monotonic()
        expired, collected = await sweep(app[DATABASE], app[STORE], retention)
        log.info("retention: dropped %d old revisions, deleted %d unreferenced chunks in %.2f s",
                 expired, collected, time.monotonic() - started)

    return periodic_context(retention.interval, one_pass, log, "retention")
