"""How much one client may ask of the door: requests per second, open connections, body size.

Everything is keyed by `core.ratelimit.client_key`: an IPv4 address, or the
IPv6 /64 (one IPv6 host usually owns a whole /64). Memory is bounded: idle
entries are forgotten, and past `max_clients` the longest-quiet client is
forgotten first, which only ever gives that client a fresh allowance (we fail
open for one forgotten client rather than refuse everybody).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from services.core.config import Config, ConfigError
from services.core.errors import TooManyRequests
from services.core.ratelimit import client_key
from services.core.sessions import COOKIE_NAME

KIB = 1024


@dataclass
class Admission:
    """One request let in by `RequestLimiter.admit`; `settle` it once its answer is known."""

    key: str
    credential: bytes | None   # keyed digest of the request's credential, never the credential
    charged: bool              # a token was taken from the address's bucket
    confirmed: bool = False    # the upstream said it authenticated the request (AUTHENTICATED_HEADER)


class RequestLimiter:
    """Limits what an address may send without credentials the upstream has confirmed.

    Anonymous floods and password guessing are cut off; a household's own
    clients are never throttled, however many share one NAT address:

    - Each address has a token bucket: `rate_limit` requests per second,
      `rate_burst` at once (at least one); `rate_limit = 0` turns it off.
    - A request without credentials takes a token, or gets 429 with Retry-After.
    - So does a request whose credentials (Authorization header or session
      cookie) the door has not seen confirmed. The door cannot check a password;
      the daemon answering can, and marks a response to an authenticated request
      with AUTHENTICATED_HEADER. Such an answer gives the token back and makes the
      credential known: its later requests pass without taking tokens.
    - Wrong credentials are never confirmed, so a guesser (or a flood dressed
      up with made-up credentials) pays like an anonymous client; a 401 makes
      a known credential unknown again (a revoked app password, a changed password).

    Known credentials are kept as HMAC digests under a per-process key, at
    most `max_credentials`, each for `credential_ttl` seconds after it was last confirmed.
    """

    credential_ttl = 3600.0

    def __init__(self, config: Config, *, max_clients: int = 10_000, max_credentials: int = 10_000,
                 clock: Callable[[], float] = time.monotonic):
        front = config.front
        self.rate = float(front.rate_limit)
        self.capacity = float(max(1, front.rate_burst))
        self.max_body_kb = front.max_body_kb
        self.max_clients = max(1, max_clients)
        self.max_credentials = max(1, max_credentials)
        self._clock = clock
        # key -> (tokens left, when they were counted); ordered by last request
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._secret = secrets.token_bytes(32)
        # credential digest -> when it stops being known; ordered by last confirmation
        self._known: OrderedDict[bytes, float] = OrderedDict()

    def admit(self, address: str | None, headers: Mapping[str, str], cookies: Mapping[str, str]) -> Admission:
        """Let a request in, taking a token unless its credential is known; TooManyRequests otherwise."""
        credential = self._digest(headers, cookies)
        if self.rate <= 0:
            return Admission(client_key(address), credential, charged=False)
        if credential is not None and self._is_known(credential):
            return Admission(client_key(address), credential, charged=False)
        return Admission(self.check(address), credential, charged=True)

    def settle(self, admission: Admission, status: int | None) -> None:
        """Learn from the answer: a confirmed credential becomes known and its token comes back."""
        if admission.credential is None:
            return
        if admission.confirmed:
            self._known.pop(admission.credential, None)
            self._known[admission.credential] = self._clock() + self.credential_ttl
            while len(self._known) > self.max_credentials:
                self._known.popitem(last=False)
            if admission.charged:
                self._refund(admission.key)
        elif status == 401:
            self._known.pop(admission.credential, None)

    def check(self, address: str | None) -> str:
        """Take one token for this client (returns its key) or raise TooManyRequests with Retry-After >= 1."""
        key = client_key(address)
        if self.rate <= 0:
            return key
        now = self._clock()
        tokens, then = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            retry_after = max(1, math.ceil((1 - tokens) / self.rate))
            raise TooManyRequests(f"{key}: more than {self.rate:g} requests per second without confirmed "
                                  f"credentials (burst {self.capacity:g})", retry_after)
        self._buckets[key] = (tokens - 1, now)
        self._prune(now)
        return key

    def _refund(self, key: str) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            self._buckets[key] = (min(self.capacity, bucket[0] + 1), bucket[1])

    def _digest(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bytes | None:
        credential = headers.get("Authorization") or cookies.get(COOKIE_NAME)
        if not credential:
            return None
        return hmac.new(self._secret, credential.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()

    def _is_known(self, credential: bytes) -> bool:
        until = self._known.get(credential)
        if until is None:
            return False
        if until <= self._clock():
            del self._known[credential]
            return False
        return True

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
