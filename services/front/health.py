"""`/healthz` of the door: is the front up, and is every upstream that should be running healthy?

Each upstream is reported with a state:

- `ok`: answers (hearth daemons: their /healthz; user services: their
  `health` URL, else a connection is accepted).
- `failing`: its supervisor says it runs, but it does not answer.
- `restarting`: its supervisor is restarting it (backoff or starting).
- `down`: stopped, gave up, or never started, and not answering: `hearth
  status` says why. One that answers though the supervisor does not run it
  (started by hand, or by systemd) is `ok`: the report says what listens.
- `not-installed`: a hearth daemon this installation does not have yet.
- `reachable` / `unreachable`: an upstream hearth does not run (a route's
  `upstream = "host:port"`); reported, never counted, since hearth cannot
  know whether it is meant to be up.

The answer is 200 when the front is up and nothing is `failing` or
`restarting`; 503 otherwise. Upstreams that are `down` do not count: they are
not started, so they are the supervisor's news, not the door's (and the
door's own readiness, which `hearth up` checks here, must not depend on them).
Results are cached for a second, so a flood of /healthz requests cannot turn
into a flood of probes.

Services with slots are reported per colour (`hello@blue`, `hello@green`), and
under `slots` with which colour is prod, the generation of that mapping and
the requests in flight to each colour, live. `GET /healthz/slots` answers
that part alone, without probing anything: `hearth promote` polls it. A
staging colour that is `failing` or `restarting` does not make the answer 503.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from services.core.config import Config
from services.core.slots import instances

from .slots import Slots
from .upstream import UpstreamAddress, Upstreams, supervision

CACHE_SECONDS = 1.0
PROBE_TIMEOUT = 2.0
COUNTED = frozenset({"failing", "restarting"})


class Health:
    """Probes every upstream of the route table and sums them up for /healthz."""

    def __init__(self, config: Config, addresses: list[UpstreamAddress], upstreams: Upstreams, slots: Slots):
        self.data_dir: Path = config.data_dir
        self.addresses = addresses
        self.upstreams = upstreams
        self.slots = slots
        self.health_urls = {spec.name: spec.health for spec in config.services if spec.health and not spec.slots}
        # a slot's health is a path, asked at the colour's own address
        self.health_paths = {i.name: i.spec.health for i in instances(config) if i.spec.health}
        self.colours = {i.name: (i.spec.name, i.colour) for i in instances(config)}
        self.timeout = aiohttp.ClientTimeout(total=min(PROBE_TIMEOUT, config.front.connect_timeout + 1))
        self._cached: tuple[float, int, dict] | None = None
        self._lock = asyncio.Lock()

    async def respond(self, request: web.BaseRequest) -> web.Response:
        if request.path == "/healthz/slots":
            return web.json_response(self.slots.report(), headers={"Cache-Control": "no-store"})
        status, report = await self.report()
        if self.slots.records:
            report = {**report, "slots": self.slots.report()}
        return web.json_response(report, status=status, headers={"Cache-Control": "no-store"})

    async def report(self) -> tuple[int, dict]:
        async with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > CACHE_SECONDS:
                states = await asyncio.gather(*(self._state(address) for address in self.addresses))
                upstreams = {address.label: state for address, state in zip(self.addresses, states)}
                bad = sorted(address.label for address, state in zip(self.addresses, states)
                             if state["state"] in COUNTED and not self._staging(address))
                report = {"status": "unhealthy" if bad else "ok", "service": "front", "upstreams": upstreams}
                if bad:
                    report["reason"] = "not answering: " + ", ".join(bad)
                self._cached = (time.monotonic(), 503 if bad else 200, report)
            return self._cached[1], self._cached[2]

    def _staging(self, address: UpstreamAddress) -> bool:
        """A staging slot is where broken versions are tried; it does not make the door unhealthy."""
        service, colour = self.colours.get(address.service or "", (None, None))
        return service is not None and self.slots.records[service].staging == colour

    async def _state(self, address: UpstreamAddress) -> dict:
        entry: dict = {"address": address.key}
        supervised = supervision(address, self.data_dir)
        if supervised.state == "unsupervised":
            entry["state"] = "reachable" if await self._connects(address) else "unreachable"
        elif supervised.state == "down" and await self._answers(address):
            # Started by hand or by another init (systemd): it is up, whatever hearth's supervisor knows.
            entry.update(state="ok", reason=f"{address.label} answers; hearth's supervisor does not run it")
        elif supervised.state in {"down", "not-installed", "restarting"}:
            entry.update(state=supervised.state, reason=supervised.reason)
        elif await self._answers(address):
            entry["state"] = "ok"
        else:
            entry.update(state="failing", reason=f"{address.label} runs but does not answer")
        return entry

    async def _answers(self, address: UpstreamAddress) -> bool:
        if address.suite:
            return await self._get(self.upstreams.session(address), address.url("/healthz"))
        if address.service in self.health_paths:
            return await self._get(self.upstreams.session(address), address.url(self.health_paths[address.service]))
        url = self.health_urls.get(address.service or "")
        if url:
            async with aiohttp.ClientSession(timeout=self.timeout) as session:
                return await self._get(session, url)
        return await self._connects(address)

    async def _get(self, session: aiohttp.ClientSession, url) -> bool:
        try:
            async with session.get(url, timeout=self.timeout, allow_redirects=False) as response:
                await response.read()
                return 200 <= response.status < 300
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return False

    async def _connects(self, address: UpstreamAddress) -> bool:
        try:
            async with asyncio.timeout(self.timeout.total):
                if address.socket:
                    _, writer = await asyncio.open_unix_connection(str(address.socket))
                else:
                    _, writer = await asyncio.open_connection(address.host, address.port)
        except (OSError, asyncio.TimeoutError):
            return False
        writer.close()
        return True
