"""Is a started service ready? Its health endpoint answers 2xx, or, with none, it stays up."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from services.core import instances
from services.core.config import Config
from services.core.http import ListenAddress
from services.core.slots import find_instance

from .layout import Paths
from .pidfile import pidfile_status
from .state import read_state

# hearth daemons whose [section] has a `listen` key and serve /healthz there.
LISTENING_DAEMONS = ("api", "sync", "dav", "files", "front")

# The tunnel agent listens nowhere: it is ready once its state file says it reached the relay
# (or that no relay is configured), written by the child now running.
TUNNEL = "tunnel"
TUNNEL_READY_STATES = ("connected", "disabled")

# A service without a health URL is ready once its child has stayed up this long.
SETTLE_SECONDS = 1.0


@dataclass(frozen=True)
class HealthCheck:
    url: str
    socket: Path | None = None

    def __str__(self) -> str:
        return f"{self.url} via unix:{self.socket}" if self.socket else self.url


def health_check(config: Config, name: str) -> HealthCheck | None:
    scaled = instances.find(config, name)  # sync_2: instance 2 of sync, at its own address
    if name in LISTENING_DAEMONS or scaled is not None:
        listen = instances.listen(config, scaled) if scaled is not None else config.values[name]["listen"]
        address = ListenAddress.parse(listen, config.data_dir)
        url = address.url("/healthz")
        if name == "front" and config.front.tls_cert:
            url = "https" + url.removeprefix("http")
        return HealthCheck(url, address.path)
    instance = find_instance(config, name)
    if instance is not None:  # one colour of a slotted service: its health path, at its own address
        if not instance.spec.health:
            return None
        address = ListenAddress.parse(instance.listen, config.data_dir)
        return HealthCheck(address.url(instance.spec.health), address.path)
    for spec in config.services:
        if spec.name == name and spec.health:
            return HealthCheck(spec.health)
    return None


async def probe(check: HealthCheck, timeout: float = 2.0) -> bool:
    connector = aiohttp.UnixConnector(path=str(check.socket)) if check.socket else None
    try:
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=timeout)) as session:
            # A local readiness probe: whether the certificate suits the public name is not its question.
            async with session.get(check.url, ssl=False if check.url.startswith("https:") else True) as response:
                return 200 <= response.status < 300
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return False


class NotReady(Exception):
    """The service did not become ready; the message says what was seen last."""

    def __init__(self, reason: str, timed_out: bool = False):
        super().__init__(reason)
        self.timed_out = timed_out


def wait_ready(config: Config, name: str, timeout: float) -> None:
    """Block until `name` is ready, or raise NotReady with the reason."""
    paths = Paths(config.data_dir, name)
    check = health_check(config, name)
    deadline = time.monotonic() + timeout
    while True:
        state = read_state(paths.pidfile) or {}
        if not pidfile_status(paths.pidfile).running:
            raise NotReady(state.get("reason") or "its supervisor is not running")
        if state.get("state") == "running" and state.get("child_pid"):
            if name == TUNNEL:
                if tunnel_ready(config, state["child_pid"]):
                    return
            elif check is None:
                started = state.get("child_started_at") or time.time()
                if time.time() - started >= SETTLE_SECONDS:
                    return
            elif asyncio.run(probe(check)):
                return
        if time.monotonic() > deadline:
            waited = (f"no healthy answer from {check}" if check
                      else tunnel_waited(config) if name == TUNNEL else "its child did not stay up")
            raise NotReady(f"not ready after {timeout:g} s: {waited}", timed_out=True)
        time.sleep(0.1)


def tunnel_ready(config: Config, child_pid: int) -> bool:
    from services.tunnel.agent_state import read_agent_state

    agent = read_agent_state(config.data_dir) or {}
    return agent.get("pid") == child_pid and agent.get("state") in TUNNEL_READY_STATES


def tunnel_waited(config: Config) -> str:
    from services.tunnel.agent_state import read_agent_state

    agent = read_agent_state(config.data_dir) or {}
    return f"the tunnel agent did not reach its relay (last error: {agent.get('last_error') or 'none yet'})"
