"""The running front end as `hearth promote` and `hearth deploy` see it.

They tell it to re-read the slot records with SIGHUP (to the front end
itself, not its wrapper, which would only reopen its log) and watch
`GET /healthz/slots` for the switch to take effect and for requests in
flight to drain. Only the HTTP answer and the pid files are shared: the
front end's code is not imported here.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Callable

import aiohttp

from services.core.config import Config

from .layout import Paths
from .pidfile import pidfile_status
from .readiness import health_check
from .state import read_state

POLL_SECONDS = 0.02
# A SIGHUP that arrived while the front end was (re)starting, before it handles the
# signal, is lost with that process: if the switch is not seen by then, signal again.
RESIGNAL_SECONDS = 1.0

Entry = dict  # one service's part of /healthz/slots: generation, prod, staging, in_flight


class FrontLink:
    """Signals and polls the front end of one installation."""

    def __init__(self, config: Config):
        self.paths = Paths(config.data_dir, "front")
        check = health_check(config, "front")
        assert check is not None  # the front end always has a listen address
        self.url = check.url + "/slots"
        self.socket = check.socket

    @property
    def running(self) -> bool:
        return pidfile_status(self.paths.pidfile).running

    def reload(self) -> bool:
        """SIGHUP to the front end process; False if there is none to signal."""
        pid = (read_state(self.paths.pidfile) or {}).get("child_pid")
        if not isinstance(pid, int) or pid <= 0:
            return False
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            return False
        return True

    def slots(self) -> dict | None:
        """The front end's /healthz/slots, or None if it does not answer."""
        return asyncio.run(self._with_session(self._get))

    def wait(self, service: str, done: Callable[[Entry], bool], timeout: float,
             resignal: bool = False) -> tuple[bool, Entry | None]:
        """Poll until `done(entry)` holds for `service`: (True, entry), or (False, last entry seen) at timeout."""
        async def poll(session: aiohttp.ClientSession) -> tuple[bool, Entry | None]:
            deadline = time.monotonic() + timeout
            signalled = time.monotonic()
            entry = None
            while True:
                report = await self._get(session)
                entry = (report or {}).get(service, entry)
                if report is not None and service in report and done(report[service]):
                    return True, report[service]
                now = time.monotonic()
                if now > deadline:
                    return False, entry
                if resignal and now - signalled > RESIGNAL_SECONDS:
                    self.reload()
                    signalled = now
                await asyncio.sleep(POLL_SECONDS)
        return asyncio.run(self._with_session(poll))

    async def _with_session(self, work):
        connector = aiohttp.UnixConnector(path=str(self.socket)) if self.socket else None
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=2.0)) as session:
            return await work(session)

    async def _get(self, session: aiohttp.ClientSession) -> dict | None:
        try:
            # Local, like the readiness probe: the certificate's name is not the question here.
            async with session.get(self.url, ssl=False if self.url.startswith("https:") else True) as response:
                if response.status != 200:
                    return None
                report = await response.json()
                return report if isinstance(report, dict) else None
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError, ValueError):
            return None
