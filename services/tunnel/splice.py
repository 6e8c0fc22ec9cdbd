"""Copy bytes both ways between two streams until either side is done or the pair goes idle.

Each direction awaits `drain()` after every write, so a slow reader slows
only its own stream: with one TCP connection per stream (the relay's pool
design) nothing else waits behind it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

CHUNK = 64 * 1024

log = logging.getLogger("tunnel.splice")

Tap = Callable[[str, bytes], None]


class Counter:
    """Bytes moved so far, per direction; shared with whoever reports them."""

    def __init__(self) -> None:
        self.inbound = 0    # public client -> home
        self.outbound = 0   # home -> public client


async def splice(client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 home: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 *, idle_timeout: float, counter: Counter | None = None, tap: Tap | None = None) -> None:
    """Relay between `client` and `home`; returns when one side closes or nothing moved for idle_timeout."""
    counter = counter or Counter()
    last_activity = [time.monotonic()]

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: str) -> None:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return
            last_activity[0] = time.monotonic()
            if direction == "in":
                counter.inbound += len(data)
            else:
                counter.outbound += len(data)
            if tap is not None:
                tap(direction, data)
            writer.write(data)
            await writer.drain()

    async def watchdog() -> None:
        while True:
            idle = time.monotonic() - last_activity[0]
            if idle >= idle_timeout:
                return
            await asyncio.sleep(min(idle_timeout - idle, 5.0) + 0.01)

    tasks = [asyncio.create_task(pump(client[0], home[1], "in")),
             asyncio.create_task(pump(home[0], client[1], "out")),
             asyncio.create_task(watchdog())]
    try:
        # One side finished: the streams carry TLS, whose close_notify has already passed by
        # then, and the pool connection (itself TLS) cannot be half-closed; so close both.
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for outcome in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(outcome, Exception) and not isinstance(outcome, (OSError, ConnectionError)):
                log.error("stream copy failed: %r", outcome)
        for writer in (client[1], home[1]):
            await close_quietly(writer)


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 2.0)
    except (OSError, asyncio.TimeoutError, ConnectionError):
        pass
