"""One hearth installation in a temp dir, driven through the `hearth` command as a user would.

Shared by the tests that start real daemons (test_supervisor, test_front_up,
test_slots): each writes its own hearth.toml and keeps only what is specific to it.
"""
from __future__ import annotations

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ADMIN_PASSWORD = "correct horse battery"


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A TCP port nothing on 127.0.0.1 is bound to, for a daemon under test to listen on.

    Picked below the kernel's ephemeral range: a port from that range may be handed out as the local port of
    any client connection (this suite's, or another suite's on a busy machine) between this probe and the
    daemon's bind; below it, only an explicit bind takes a port."""
    high = _ephemeral_low()
    pick = random.SystemRandom()
    for _ in range(500):
        port = pick.randrange(max(1024, high - 22000), high)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free TCP port below the ephemeral range")


def listening(port: int, pid: int | str = "self") -> bool:
    """Whether a TCP socket listens on `port`, as process `pid`'s network namespace sees it (Linux).

    Read from /proc rather than by connecting: a probe connection is a client
    the server under test would serve, or log, as a real one.
    """
    for table in ("tcp", "tcp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6 in this kernel
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            if state == "0A" and int(local.rpartition(":")[2], 16) == port:  # 0A: TCP_LISTEN
                return True
    return False


def http_get(port: int, path: str) -> tuple[int, bytes]:
    """One plain GET on loopback, on a fresh connection: (status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def clean_environ(**extra: str) -> dict[str, str]:
    """This process's environment without any HEARTH_* variable, plus `extra`."""
    from tests import seaweed

    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    env.update(seaweed.session_environ())  # the S3 credentials when the session keeps blobs in S3
    env.update(extra)
    return env


class Installation:
    """hearth.toml (from `config`) and its data in `root`/var; every command runs with cwd `root`."""

    def __init__(self, root: Path, config: str):
        self.root = root
        self.config = root / "hearth.toml"
        from tests import seaweed

        self.config.write_text(f"{config}\n{seaweed.session_storage(root)}")
        self.var = root / "var"

    def hearth(self, *args: str, check: bool = False, timeout: float = 90,
               input: str | None = None) -> subprocess.CompletedProcess:
        """`hearth --config hearth.toml ARGS`, with no HEARTH_* from outside but HEARTH_ADMIN_PASSWORD."""
        env = clean_environ(HEARTH_ADMIN_PASSWORD=ADMIN_PASSWORD)
        result = subprocess.run([sys.executable, "-m", "services.cli", "--config", str(self.config), *args],
                                capture_output=True, text=True, env=env, cwd=self.root, timeout=timeout,
                                input=input)
        if check:
            assert result.returncode == 0, f"hearth {' '.join(args)}: {result.stdout}{result.stderr}"
        return result

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        """`hearth ARGS`, asserting it exits 0."""
        return self.hearth(*args, check=True)

    def state(self, name: str) -> dict:
        return json.loads((self.var / "run" / f"{name}.state").read_text())

    def wait_for(self, predicate, timeout: float = 10.0, what: str = "condition"):
        """The first truthy value of predicate(), polled every 50 ms; AssertionError after `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")

    def pidfiles(self) -> list[Path]:
        return sorted((self.var / "run").glob("*.pid"))

    def status_rows(self) -> dict[str, list[str]]:
        """`hearth status` below its header: each non-blank line's fields, by its first (the name)."""
        lines = self.hearth("status").stdout.splitlines()[1:]
        return {line.split()[0]: line.split() for line in lines if line.split()}


class OnePort(Installation):
    """An installation whose front end listens on a free loopback port, reached at `url`; `extra` is
    appended to its hearth.toml (more tables)."""

    def __init__(self, root: Path, extra: str = ""):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(root, f'data_dir = "var"\n[front]\nlisten = "127.0.0.1:{self.port}"\n{extra}')


@contextmanager
def running(installation: Installation) -> Iterator[subprocess.CompletedProcess]:
    """`hearth up` (asserted to succeed), yielding its result; `hearth down` afterwards, whatever happened."""
    try:
        up = installation.hearth("up")
        assert up.returncode == 0, up.stdout + up.stderr
        yield up
    finally:
        installation.hearth("down")
    from tests import seaweed
    seaweed.check_session_home(installation.root)
