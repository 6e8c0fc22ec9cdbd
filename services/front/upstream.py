"""The services behind the door: their addresses, keep-alive pools, and whether they are up.

Each upstream gets one aiohttp ClientSession with its own connector (a Unix
socket or TCP), so connections are kept alive and reused per upstream. The
sessions pass bodies through untouched: no decompression, no cookie jar, no
default headers, no redirects followed.

When connecting fails, `supervision` reads the supervisor's state file (the
shared file format of services.rc.state, not its internals) to tell "it is
restarting, retry shortly" (503) from "nothing will answer" (502).
"""
from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp
from yarl import URL

from services.core.config import Config, ConfigError
from services.core.http import ListenAddress
from services.rc.layout import RC_DIR, Paths, script_name
from services.rc.state import read_state

# Headers aiohttp's client would add on its own; a proxy passes the client's as they are.
SKIP_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
# Idle keep-alive connections to an upstream are dropped after this long: well under
# the keep-alive of aiohttp (75 s) and most servers, so we rarely reuse one they closed.
POOL_KEEPALIVE_SECONDS = 15.0

log = logging.getLogger("front.upstream")

SupervisionState = Literal["running", "restarting", "down", "not-installed", "unsupervised"]


@dataclass(frozen=True)
class UpstreamAddress:
    """Where one upstream listens, and which supervised service (if any) it is."""

    label: str                 # for logs and /healthz: the service name, or the address
    host: str | None = None
    port: int | None = None
    socket: Path | None = None
    service: str | None = None  # a hearth daemon or [[service]] name: its state file tells if it restarts
    suite: bool = False         # one of hearth's own daemons (api, sync, …)
    slot: str | None = None     # "prod" or "staging": stands for whichever colour of `service` has that
    #                             label now; the front end's Slots picks the real address per request
    pool: tuple[UpstreamAddress, ...] = ()  # a daemon with [NAME] instances > 1: its instances' addresses,
    #                                         over which the Balancer spreads requests

    @property
    def key(self) -> str:
        if self.pool:
            return f"pool:{self.service}"
        if self.slot:
            return f"slot:{self.service}@{self.slot}"
        return f"unix:{self.socket}" if self.socket else f"{self.host}:{self.port}"

    def url(self, target: str) -> URL:
        """The URL to request for a raw request target (path and query, already encoded)."""
        if self.socket:
            return URL(f"http://localhost{target}", encoded=True)
        host = f"[{self.host}]" if self.host and ":" in self.host else self.host
        return URL(f"http://{host}:{self.port}{target}", encoded=True)

    def ws_url(self, target: str) -> URL:
        return self.url(target).with_scheme("ws")

    def __str__(self) -> str:
        return self.key if self.label == self.key else f"{self.label} ({self.key})"


def parse_upstream(value: str, data_dir: Path, *, service: str | None = None, suite: bool = False,
                   where: str = "upstream") -> UpstreamAddress:
    """`HOST:PORT` or `unix:PATH` (relative to data_dir); a wildcard listen host means loopback."""
    try:
        address = ListenAddress.parse(value, data_dir)
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    if address.path is not None:
        return UpstreamAddress(label=service or f"unix:{address.path}", socket=address.path, service=service,
                               suite=suite)
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address.host or "", address.host)
    return UpstreamAddress(label=service or f"{host}:{address.port}", host=host, port=address.port,
                           service=service, suite=suite)


class Balancer:
    """Round robin over the instances of a pooled upstream: the order in which one request tries them.

    The next request starts one instance further on; a request that cannot be
    sent to its first (refused: restarting or killed) goes on to the next. An
    instance that failed is tried last for PASS_OVER seconds, so while the
    supervisor restarts it requests do not each knock at its door first; it is
    logged once when it fails and once when it answers again.
    """

    PASS_OVER = 1.0

    def __init__(self) -> None:
        self._turns: dict[str, int] = {}
        self._failed_at: dict[str, float] = {}  # instance key -> when it last failed

    def order(self, address: UpstreamAddress) -> list[UpstreamAddress]:
        if not address.pool:
            return [address]
        turn = self._turns.get(address.key, 0)
        self._turns[address.key] = (turn + 1) % len(address.pool)
        turned = [*address.pool[turn:], *address.pool[:turn]]
        if not self._failed_at:
            return turned
        now = time.monotonic()
        passed_over = [a for a in turned if now - self._failed_at.get(a.key, -self.PASS_OVER) < self.PASS_OVER]
        return [*(a for a in turned if a not in passed_over), *passed_over]

    def failed(self, address: UpstreamAddress, why: str) -> None:
        if address.key not in self._failed_at:
            log.warning("%s: %s; passing its requests to the other instances", address.label, why)
        self._failed_at[address.key] = time.monotonic()

    def answered(self, address: UpstreamAddress) -> None:
        if self._failed_at.pop(address.key, None) is not None:
            log.info("%s: answering again", address.label)


class Upstreams:
    """One keep-alive client session per upstream address; created in `start`, closed in `close`."""

    def __init__(self, config: Config, addresses: list[UpstreamAddress]):
        front = config.front
        self.addresses = {address.key: address for address in addresses}
        self.timeout = aiohttp.ClientTimeout(
            total=front.total_timeout or None,
            connect=front.connect_timeout or None,
            sock_connect=front.connect_timeout or None,
            sock_read=front.idle_timeout or None,
        )
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    async def start(self) -> None:
        for key, address in self.addresses.items():
            self._sessions[key] = self._new_session(address)

    def session(self, address: UpstreamAddress) -> aiohttp.ClientSession:
        return self._sessions[address.key]

    def _new_session(self, address: UpstreamAddress) -> aiohttp.ClientSession:
        # limit=0: no pool-wide cap, so a request never queues for a connection (and never
        # waits past connect_timeout); connections per client are capped at the door.
        if address.socket:
            connector: aiohttp.BaseConnector = aiohttp.UnixConnector(
                path=str(address.socket), limit=0, keepalive_timeout=POOL_KEEPALIVE_SECONDS)
        else:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=POOL_KEEPALIVE_SECONDS, ttl_dns_cache=60)
        return aiohttp.ClientSession(
            connector=connector, timeout=self.timeout, auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=SKIP_AUTO_HEADERS,
            trust_env=False, raise_for_status=False,
        )

    async def close(self) -> None:
        for session in self._sessions.values():
            await session.close()
        self._sessions.clear()


@dataclass(frozen=True)
class Supervision:
    """What the supervisor says about an upstream's service, and a sentence for the user."""

    state: SupervisionState
    reason: str


def supervision(address: UpstreamAddress, data_dir: Path) -> Supervision:
    """Read the service's state file: is it running, restarting, or down for good?"""
    name = address.service
    if name is None:
        return Supervision("unsupervised", f"{address.key} is not a service hearth runs")
    state = read_state(Paths(data_dir, name).pidfile)
    if state is None:
        if address.suite and not (RC_DIR / script_name(name)).exists():
            return Supervision("not-installed", f"{name} is not running: this hearth does not have it yet")
        return Supervision("down", f"{name} is not running (never started; `hearth up` starts it)")
    current = state.get("state")
    if not _alive(state.get("supervisor_pid")):
        reason = state.get("reason") or f"its supervisor is gone (last state: {current})"
        return Supervision("down", f"{name} is not running: {reason}")
    if current == "running":
        return Supervision("running", f"{name} is running")
    if current in {"starting", "backoff"}:
        last = state.get("last_exit")
        return Supervision("restarting", f"{name} is restarting" + (f" after {last}" if last else ""))
    reason = state.get("reason") or current or "unknown state"
    return Supervision("down", f"{name} is not running: {reason}")


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user (the front may run unprivileged)
        return True
    return True
