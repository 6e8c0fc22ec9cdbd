"""How much one client may ask of the door: requests per second, open connections, body size.

Everything is keyed by `core.ratelimit.client_key`: an IPv4 address, or the
IPv6 /64 (one IPv6 host usually owns a whole /64). Memory is bounded: idle
entries are forgotten, and past `max_clients` the longest-quiet client is
forgotten first, which only ever gives that client a fresh allowance (we fail
open for one forgotten client rather than refuse everybody).
"""
from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from typing import Callable, Iterable

from services.core.config import Config, ConfigError
from services.core.errors import TooManyRequests
from services.core.ratelimit import client_key

KIB = 1024


class RequestLimiter:
    """A token bucket per client: `rate_limit` requests per second, `rate_burst` at once.

    A client starts with a full bucket of `rate_burst` tokens (at least one);
    each request takes one, and tokens come back at `rate_limit` per second.
    `rate_limit = 0` turns request limiting off.
    """

    def __init__(self, config: Config, *, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        front = config.front
        self.rate = float(front.rate_limit)
        self.capacity = float(max(1, front.rate_burst))
        self.max_body_kb = front.max_body_kb
        self.max_clients = max(1, max_clients)
        self._clock = clock
        # key -> (tokens left, when they were counted); ordered by last request
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, address: str | None) -> None:
        """Take one token for this client or raise TooManyRequests with Retry-After >= 1."""
        if self.rate <= 0:
            return
        key = client_key(address)
        now = self._clock()
        tokens, then = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            retry_after = max(1, math.ceil((1 - tokens) / self.rate))
            raise TooManyRequests(f"{key}: more than {self.rate:g} requests per second "
                                  f"(burst {self.capacity:g})", retry_after)
        self._buckets[key] = (tokens - 1, now)
        self._prune(now)

    def _prune(self, now: float) -> None:
        """Forget clients whose bucket has refilled (same as never seen), then the oldest past the cap."""
        refill_time = self.capacity / self.rate
        while self._buckets:
            key, (_, then) = next(iter(self._buckets.items()))
            if now - then < refill_time and len(self._buckets) <= self.max_clients:
                break
            del self._buckets[key]

    def body_limit(self, route_max_body_kb: int | None) -> int | None:
        """The request body limit in bytes: the route's own, else [front] max_body_kb; 0 means none (None)."""
        kib = self.max_body_kb if route_max_body_kb is None else route_max_body_kb
        return kib * KIB if kib and kib > 0 else None

    def __len__(self) -> int:
        return len(self._buckets)


class ConnectionLimiter:
    """Open connections per client address, for the `max_connections` cap.

    Connections from `trusted_proxies` (the tunnel agent, cloudflared) are not
    counted: every client behind them shares their address, and the real one
    is only known from X-Forwarded-For once a request has been read.
    """

    def __init__(self, max_connections: int, trusted_proxies: Iterable[str] = ()):
        self.max_connections = max_connections
        self._trusted = _parse_networks(trusted_proxies)
        self._open: dict[str, int] = {}

    def open(self, address: str | None) -> tuple[str, bool] | None:
        """Count a new connection; returns (client key, within the cap), or None when not counted.

        Every counted connection must be given back with `close(key)`, refused or not.
        """
        if self.max_connections <= 0 or self._is_trusted(address):
            return None
        key = client_key(address)
        count = self._open.get(key, 0) + 1
        self._open[key] = count
        return key, count <= self.max_connections

    def close(self, key: str) -> None:
        count = self._open.get(key, 0) - 1
        if count > 0:
            self._open[key] = count
        else:
            self._open.pop(key, None)

    def count(self, address: str | None) -> int:
        return self._open.get(client_key(address), 0)

    def __len__(self) -> int:
        return len(self._open)

    def _is_trusted(self, address: str | None) -> bool:
        if not address or not self._trusted:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self._trusted)


def _parse_networks(entries: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ConfigError(f"[front] trusted_proxies: {entry!r} is not an address or CIDR") from None
    return tuple(networks)
