"""Jobs a daemon repeats on a schedule (retention, garbage collection) for as long as it runs.

`periodic_context` is the cleanup_ctx entry: the job starts one interval after
startup (or sooner, when asked), a failed pass is logged and the next one
retries, and shutdown cancels the schedule. `non_negative` checks the config
keys such schedules read, so a wrong value stops the daemon at start (exit 2),
not at 3 a.m.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import web

from .config import Config, ConfigError
from .http import first_instance

Job = Callable[[web.Application], Awaitable[None]]


def non_negative(config: Config, section: str, keys: tuple[str, ...]) -> dict[str, int]:
    """The keys' values from [section]; ConfigError naming the first negative one."""
    values = config.values[section]
    for key in keys:
        if values[key] < 0:
            raise ConfigError(f"{config.path or 'environment'}: [{section}] {key}: expected 0 or more, "
                              f"got {values[key]}")
    return {key: values[key] for key in keys}


def periodic_context(interval: float, job: Job, log: logging.Logger, name: str, *,
                     first_after: float | None = None):
    """A cleanup_ctx entry running `job(app)` every `interval` seconds (0: never) until shutdown, the first
    time `first_after` seconds after startup (default: one interval)."""

    async def every(app: web.Application) -> None:
        wait = interval if first_after is None else first_after
        while True:
            await asyncio.sleep(wait)
            wait = interval
            try:
                await job(app)
            except Exception:  # a failed pass must not end the schedule; the next one retries
                log.exception("%s: pass failed", name)

    async def context(app: web.Application) -> AsyncIterator[None]:
        # One schedule per daemon however many instances run it: the others would only repeat its sweeps.
        task = asyncio.create_task(every(app)) if interval > 0 and first_instance(app) else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return context
