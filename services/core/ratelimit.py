"""Failed attempts per client address, counted in the shared database.

Every daemon checks credentials (api, dav, files, sync), so the count lives in
the one SQLite database they share: ten guesses are ten whichever daemons they
went to, and a restart forgets nothing. An address that failed `max_failures`
times within `window` seconds is refused until its oldest counted failure ages
out. Successes never erase failures: otherwise an attacker holding one valid
account could reset the counter between guesses at another.

Only failures write (through the daemon's one writer); a check is one indexed
read. The table stays small: per address only the latest `max_failures` rows
matter and are kept, rows older than the window are dropped on each write, and
past MAX_ROWS the oldest go first (a flood from many addresses can at worst
give an early one a fresh allowance, never fill the disk).
"""
from __future__ import annotations

import ipaddress
import math
import time
from typing import Callable

import sqlite_utils

from .db import Database
from .errors import TooManyRequests

MAX_ROWS = 100_000


def client_key(address: str | None) -> str:
    """What failures are counted against: the IPv4 address, or the IPv6 /64.

    One IPv6 host usually owns a whole /64, so counting single addresses
    would give it 2**64 fresh counters.
    """
    if not address:
        return "unknown"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def recent_failures(db: sqlite_utils.Database, kind: str, key: str, since: float, most: int) -> list[float]:
    """When `key` failed at `kind` after `since`: the latest `most` times, newest first."""
    return [row[0] for row in db.execute(
        "SELECT at FROM auth_failures WHERE kind = ? AND key = ? AND at > ? ORDER BY at DESC LIMIT ?",
        [kind, key, since, most])]


def add_failure(db: sqlite_utils.Database, kind: str, key: str, now: float, window: float, keep: int) -> int:
    """Count one failure (inside the caller's write transaction) and prune; returns the count in the window."""
    db.execute("INSERT INTO auth_failures (kind, key, at) VALUES (?, ?, ?)", [kind, key, now])
    db.execute("""DELETE FROM auth_failures WHERE kind = ? AND key = ? AND id NOT IN (
                      SELECT id FROM auth_failures WHERE kind = ? AND key = ? ORDER BY at DESC LIMIT ?)""",
               [kind, key, kind, key, keep])
    db.execute("DELETE FROM auth_failures WHERE at <= ?", [now - window])
    db.execute("DELETE FROM auth_failures WHERE id <= (SELECT max(id) FROM auth_failures) - ?", [MAX_ROWS])
    return len(recent_failures(db, kind, key, now - window, keep))


class FailureLimiter:
    """A sliding window of failures of one `kind` ("login", "link-password") per client address."""

    def __init__(self, database: Database, kind: str, max_failures: int, window: float, *,
                 clock: Callable[[], float] = time.time):
        self.database = database
        self.kind = kind
        self.max_failures = max(1, max_failures)
        self.window = window
        # Wall-clock time: the rows are shared with other processes and outlive this one.
        self._clock = clock

    async def retry_after(self, address: str | None) -> float | None:
        """Seconds until this address may try again, or None if it may now."""
        key, now = client_key(address), self._clock()
        times = await self.database.read(
            lambda db: recent_failures(db, self.kind, key, now - self.window, self.max_failures))
        if len(times) < self.max_failures:
            return None
        return times[-1] + self.window - now

    async def check(self, address: str | None, what: str) -> None:
        """TooManyRequests (429 with Retry-After) while this address is refused; `what` names its failures."""
        wait = await self.retry_after(address)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            raise TooManyRequests(f"too many {what} from {address}; try again in {seconds} s",
                                  retry_after=seconds)

    async def record_failure(self, address: str | None) -> int:
        """Count one failure; returns how many are counted for the address now."""
        key, now = client_key(address), self._clock()
        return await self.database.write(
            lambda db: add_failure(db, self.kind, key, now, self.window, self.max_failures))
