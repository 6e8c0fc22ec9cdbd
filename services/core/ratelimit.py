"""Failed-login counting per client address, in memory and bounded.

An address that failed `max_failures` times within `window` seconds is refused
until its oldest counted failure ages out. Successes never erase failures:
otherwise an attacker holding one valid account could reset the counter
between guesses at another.
"""
from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque
from typing import Callable


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


class FailureLimiter:
    """Sliding-window failure counter keyed by client address."""

    def __init__(self, max_failures: int, window: float, *, max_addresses: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        self.max_failures = max(1, max_failures)
        self.window = window
        self.max_addresses = max_addresses
        self._clock = clock
        # address -> the most recent failure times (only the last max_failures matter)
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str | None) -> float | None:
        """Seconds until this address may try again, or None if it may now."""
        key = client_key(address)
        failures = self._failures.get(key)
        if failures is None:
            return None
        now = self._clock()
        self._expire(failures, now)
        if not failures:
            del self._failures[key]
            return None
        if len(failures) < self.max_failures:
            return None
        return failures[0] + self.window - now

    def record_failure(self, address: str | None) -> int:
        """Count one failure; returns how many are counted for the address now."""
        key = client_key(address)
        now = self._clock()
        failures = self._failures.get(key)
        if failures is None:
            failures = self._failures[key] = deque(maxlen=self.max_failures)
        self._failures.move_to_end(key)
        self._expire(failures, now)
        failures.append(now)
        if len(self._failures) > self.max_addresses:
            self._prune(now)
        return len(failures)

    def _expire(self, failures: deque[float], now: float) -> None:
        while failures and failures[0] <= now - self.window:
            failures.popleft()

    def _prune(self, now: float) -> None:
        """Forget expired addresses; if still too many, the longest-quiet ones.

        Entries are ordered by their latest failure, so expired ones are at the front.
        """
        while self._failures:
            key, failures = next(iter(self._failures.items()))
            if failures and failures[-1] > now - self.window and len(self._failures) <= self.max_addresses:
                break
            del self._failures[key]

    def __len__(self) -> int:
        return len(self._failures)
