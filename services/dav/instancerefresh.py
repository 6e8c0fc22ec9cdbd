"""Stored event instances (instancerows.py) kept for the years around now, inside the DAV daemon.

A PUT stores an event's instances over the years around that day. Events
stored before instances were stored have none, and as the years move on the
stored ones fall behind; both are read the exact (slow) way until this job,
run at start and every [dav] gc_interval seconds, computes their rows again.
Rows are computed on a reader thread and written in small transactions, only
for bytes that did not change meanwhile.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timezone

from aiohttp import web

from services.core.config import Config
from services.core.db import Database
from services.core.http import DATABASE
from services.core.periodic import non_negative, periodic_context

from .instancerows import covered_years, instance_rows
from .store.instances import set_instances_if_unchanged, unindexed_events

log = logging.getLogger("dav")

BATCH = 50  # events computed per read and written per transaction


async def refresh(database: Database, now: datetime | None = None) -> int:
    """Store the instances of every event whose stored ones are missing or for other years; how many."""
    now = now or datetime.now(timezone.utc)
    years_from = int(covered_years(now)[0].timestamp())

    def compute(db):
        return [(event, instance_rows(event.raw, event.first_start, event.last_end, now))
                for event in unindexed_events(db, years_from, BATCH)]

    done = 0
    while computed := await database.read(compute):
        # Each event here either gets rows for these years or changed meanwhile (its PUT stored its own):
        # the next batch is always another one.
        done += await database.write(lambda db: sum(set_instances_if_unchanged(db, event, found)
                                                    for event, found in computed))
    return done


def instances_context(config: Config):
    """A cleanup_ctx entry running `refresh` at startup and every [dav] gc_interval seconds (0: never)."""
    interval = non_negative(config, "dav", ("gc_interval",))["gc_interval"]

    async def one_pass(app: web.Application) -> None:
        started = time.monotonic()
        done = await refresh(app[DATABASE])
        log.log(logging.INFO if done else logging.DEBUG, "instances: stored the instances of %d events "
                "in %.2f s", done, time.monotonic() - started)

    return periodic_context(interval, one_pass, log, "instances", first_after=0)
