"""One hearth daemon (`python -m services.NAME`) as its own process on a loopback TCP port.

The sync and DAV tests each subclass it with the requests they speak."""
from __future__ import annotations

import base64
import functools
import http.client
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from services.core.tree import BlobStore
from tests import seaweed
from tests.installation import free_port
from tests.stores import home_store

PASSWORDS = {"alice": "alice password", "bob": "bob password", "carol": "carol password"}


class LoopbackDaemon:
    """`module` is the daemon (`services.sync`), `section` its hearth.toml table ([sync] listen = ...)."""

    module = section = ""

    def __init__(self, home: Path, extra: str = ""):
        """`extra`: more keys for the daemon's own section, e.g. "quota_mb = 1\\n"."""
        self.home = home
        self.port = free_port()
        self.config = home / "hearth.toml"
        self.config.write_text(f'data_dir = "var"\n[{self.section}]\nlisten = "127.0.0.1:{self.port}"\n{extra}\n'
                               f'{seaweed.session_storage(home)}')
        self.env = {**{k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")},
                    **seaweed.session_environ()}
        self.log_path = home / f"{self.section}.stderr"

    def add_user(self, name: str) -> None:
        result = self.hearth("user", "add", name, "--password-stdin", input=PASSWORDS[name] + "\n")
        assert result.returncode == 0, result.stderr

    def hearth(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """The `hearth` command on this daemon's config and data, as an admin types it."""
        return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(self.config), *args],
                              input=input, capture_output=True, text=True, env=self.env, timeout=60)

    def healthy(self) -> bool:
        raise NotImplementedError

    def on_data_of(self, home: Path) -> "LoopbackDaemon":
        """This daemon on another home's data directory and blob store (its bucket when the session keeps
        blobs in S3), as `hearth up` runs every daemon on one."""
        text = self.config.read_text().replace('data_dir = "var"', f'data_dir = "{home / "var"}"')
        self.config.write_text(text.replace(seaweed.session_storage(self.home), seaweed.session_storage(home)))
        return self

    @functools.cached_property
    def store(self) -> BlobStore:
        """The daemon's own blob store as the one factory builds it: its var/blobs, or its bucket when the
        session runs on S3. Tests look at chunks through it, never through a directory."""
        return home_store(self.config)

    def start(self):
        self.stderr = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", self.module, "--config", str(self.config)],
                                        cwd=self.home, env=self.env, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log()
            try:
                if self.healthy():
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"{self.module} not healthy in time: {self.log()}")

    def restart(self, timeout: float = 20) -> None:
        """Start again on the same port and data after the process died (killed by a test)."""
        assert self.process.poll() is not None
        self.stderr.close()
        deadline = time.monotonic() + timeout
        while True:  # the port may take a moment to be free again
            try:
                self.start()
                return
            except AssertionError:
                self.stderr.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=15)
        self.stderr.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def exchange(self, method: str, path: str, body: bytes | str | None = None, user: str | None = None,
                 headers: dict | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
        """One request on a fresh connection, as `user` (HTTP Basic) if given: (status, headers, body);
        header names in lower case."""
        headers = dict(headers or {})
        if user:
            token = base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if isinstance(body, str):
            body = body.encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data


@contextmanager
def serving(daemon: LoopbackDaemon, *users: str) -> Iterator:
    """The daemon with these users, running; stopped afterwards, asserting a clean exit."""
    for user in users:
        daemon.add_user(user)
    daemon.start()
    yield daemon
    assert daemon.stop() == 0, daemon.log()
    seaweed.check_session_home(daemon.home)
