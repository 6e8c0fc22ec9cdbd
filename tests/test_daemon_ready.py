"""A daemon says "serving on ADDRESS" only once a connection to ADDRESS succeeds.

People, scripts and the supervisor's logs read that line as "up": logged
before the socket was bound, anything that connected on seeing it got
"connection refused" (under load, for as long as the database migration
took). Each daemon is started as its own process several times; its stderr
is polled, and the moment the line appears a connection is made at once.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.installation import free_port, http_get, listening

RUNS = 2


def start(module: str, section: str, home: Path, listen: str) -> tuple[subprocess.Popen, Path]:
    (home / "hearth.toml").write_text(f'data_dir = "var"\n[{section}]\nlisten = "{listen}"\n')
    return launch(module, section, home)


def launch(module: str, name: str, home: Path) -> tuple[subprocess.Popen, Path]:
    """`python -m module` with home/hearth.toml; its stderr goes to home/NAME.stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    stderr = home / f"{name}.stderr"
    with open(stderr, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", module, "--config", str(home / "hearth.toml")], cwd=home,
                                   env=env, stdout=subprocess.DEVNULL, stderr=sink)
    return process, stderr


def wait_for(check, process: subprocess.Popen, stderr: Path, timeout: float = 30, poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert process.poll() is None, stderr.read_text()
        assert time.monotonic() < deadline, stderr.read_text()
        time.sleep(poll)


def connect(listen: str, home: Path) -> None:
    if listen.startswith("unix:"):
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(home / "var" / listen[5:]))
    else:
        host, _, port = listen.rpartition(":")
        socket.create_connection((host, int(port)), timeout=5).close()


@pytest.mark.parametrize("module,section", [("services.api", "api"), ("services.files", "files"),
                                            ("services.front", "front")])
@pytest.mark.parametrize("where", ["tcp", "unix"])
def test_serving_on_is_logged_only_once_the_socket_accepts(tmp_path, module, section, where):
    for run in range(RUNS):
        home = tmp_path / str(run)
        home.mkdir()
        listen = f"127.0.0.1:{free_port()}" if where == "tcp" else f"unix:run/{section}.sock"
        process, stderr = start(module, section, home, listen)
        try:
            wait_for(lambda: b"serving on" in stderr.read_bytes(), process, stderr, poll=0.001)
            try:
                connect(listen, home)  # at once: no retry, no grace
            except OSError as error:
                pytest.fail(f"run {run}: 'serving on' was logged but connecting failed: {error}")
        finally:
            process.terminate()
            assert process.wait(timeout=15) == 0, stderr.read_text()


def test_the_doors_healthz_says_whether_a_daemon_it_does_not_supervise_is_listening(tmp_path):
    """/healthz of the front reports what listens: a hand-started API is `down` until bound, then `ok`."""
    port = free_port()
    (tmp_path / "hearth.toml").write_text(f'data_dir = "var"\n[front]\nlisten = "127.0.0.1:{port}"\n')
    front, front_log = launch("services.front", "front", tmp_path)
    api = None
    try:
        def api_state() -> str:
            status, body = http_get(port, "/healthz")
            assert status == 200, body  # an unsupervised daemon never makes the door unhealthy
            return json.loads(body)["upstreams"]["api"]["state"]

        wait_for(lambda: listening(port), front, front_log)
        assert api_state() == "down"
        api, api_log = launch("services.api", "api", tmp_path)  # on its default unix:run/api.sock
        wait_for(lambda: api_state() == "ok", api, api_log)  # once it listens, and the report's 1 s cache is over
    finally:
        for process in (front, api):
            if process is not None:
                process.terminate()
                process.wait(timeout=15)
