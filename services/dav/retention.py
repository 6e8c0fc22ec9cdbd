"""Dropping expired item revisions inside the DAV daemon, every [dav] gc_interval seconds.

A revision replaced more than keep_revisions_days ago goes. Deletion runs in
small write transactions, so PUTs queue behind the writer for a moment at
most, never for a whole sweep after a large address book was deleted.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone

from aiohttp import web

from services.core.config import Config
from services.core.db import Database
from services.core.http import DATABASE
from services.core.periodic import non_negative, periodic_context

from .store import expire_revisions

log = logging.getLogger("dav")

BATCH = 500  # revisions dropped per write transaction


async def sweep(database: Database, keep_days: int) -> int:
    """Drop every revision older than `keep_days` (0: none); returns how many went."""
    if keep_days == 0:
        return 0
    older_than = datetime.now(timezone.utc) - timedelta(days=keep_days)
    dropped = 0
    while (batch := await database.write(lambda db: expire_revisions(db, older_than, limit=BATCH))):
        dropped += batch
        if batch < BATCH:
            break
    return dropped


def retention_context(config: Config):
    """A cleanup_ctx entry running the sweep from startup to shutdown (config checked now: exit 2)."""
    keys = non_negative(config, "dav", ("keep_revisions_days", "gc_interval"))

    async def one_pass(app: web.Application) -> None:
        started = time.monotonic()
        dropped = await sweep(app[DATABASE], keys["keep_revisions_days"])
        # An hourly "dropped 0" would only bury the lines that matter.
        log.log(logging.INFO if dropped else logging.DEBUG, "retention: dropped %d expired item revisions "
                "in %.2f s", dropped, time.monotonic() - started)

    return periodic_context(keys["gc_interval"], one_pass, log, "retention")
