"""A daemon says "serving on ADDRESS" only once a connection to ADDRESS succeeds.

People, scripts and the supervisor's logs read that line as "up": logged
before the socket was bound, anything that connected on seeing it got
"connection refused" (under load, for as long as the database migration
took). Each daemon is started as its own process several times; its stderr
is polled, and the moment the line appears a connection is made at once.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.installation import free_port

RUNS = 2


def start(module: str, section: str, home: Path, listen: str) -> tuple[subprocess.Popen, Path]:
    config = home / "hearth.toml"
    config.write_text(f'data_dir = "var"\n[{section}]\nlisten = "{listen}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    stderr = home / f"{section}.stderr"
    with open(stderr, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", module, "--config", str(config)], cwd=home, env=env,
                                   stdout=subprocess.DEVNULL, stderr=sink)
    return process, stderr


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
            deadline = time.monotonic() + 30
            while b"serving on" not in stderr.read_bytes():
                assert process.poll() is None, stderr.read_text()
                assert time.monotonic() < deadline, stderr.read_text()
                time.sleep(0.001)
            try:
                connect(listen, home)  # at once: no retry, no grace
            except OSError as error:
                pytest.fail(f"run {run}: 'serving on' was logged but connecting failed: {error}")
        finally:
            process.terminate()
            assert process.wait(timeout=15) == 0, stderr.read_text()
