"""Real sync clients against a real sync daemon on loopback, for the client tests.

`Client.once()` runs `hearth sync DIR … --once` to completion; `Client.start()` runs
the long-lived client (watcher + change feed) as its own process, which tests stop
with SIGTERM or kill with SIGKILL. `tree()` is what "identical" means: every path
below the root except the client's own `.hearth*` files, with content, mtime and
exec bit.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.installation import clean_environ
from tests.test_sync_server import PASSWORDS, SyncDaemon

REPO = Path(__file__).resolve().parent.parent


def tree(root: Path) -> dict[str, tuple]:
    """relpath -> ("dir",) or ("file", bytes, mtime_ns, executable), without .hearth* entries."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".hearth")]
        base = Path(dirpath)
        for name in dirnames:
            found[str((base / name).relative_to(root))] = ("dir",)
        for name in filenames:
            if name.startswith(".hearth"):
                continue
            path = base / name
            st = path.lstat()
            found[str(path.relative_to(root))] = ("file", path.read_bytes(), st.st_mtime_ns,
                                                  bool(st.st_mode & 0o100))
    return found


class Client:
    """One device syncing `root` with `folder` on `server` as `user`."""

    def __init__(self, server: SyncDaemon, root: Path, user: str = "alice", device: str = "A",
                 folder: str = "Docs"):
        self.server, self.root, self.user, self.device, self.folder = server, root, user, device, folder
        root.mkdir(parents=True, exist_ok=True)
        self.log_path = root.parent / f"{root.name}.client.log"
        self.process: subprocess.Popen | None = None

    def argv(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "services.cli", "sync", str(self.root),
                "--server", f"http://127.0.0.1:{self.server.port}", "--user", self.user, "--password-stdin",
                "--device", self.device, "--folder", self.folder, *extra]

    def once(self, *extra: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """`hearth sync DIR --once`; with check, asserts exit 0."""
        result = subprocess.run(self.argv("--once", *extra), input=PASSWORDS[self.user] + "\n",
                                capture_output=True, text=True, cwd=REPO, env=clean_environ(), timeout=timeout)
        with open(self.log_path, "a") as log:
            log.write(result.stderr)
        if check:
            assert result.returncode == 0, f"{self.device}: exit {result.returncode}\n{result.stderr[-4000:]}"
        return result

    def start(self, *extra: str) -> "Client":
        """The long-running client; returns once it has finished its first cycle."""
        log = open(self.log_path, "a")
        self.process = subprocess.Popen(self.argv(*extra), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=log, cwd=REPO, env=clean_environ(), text=True)
        log.close()
        self.process.stdin.write(PASSWORDS[self.user] + "\n")
        self.process.stdin.close()
        self.wait_for(lambda: self.status().returncode == 0 or self.process.poll() is not None,
                      what=f"{self.device} to be in sync after its first cycle", timeout=60)
        assert self.process.poll() is None, self.log()
        return self

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit status."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        self.process = None
        return code

    def kill(self) -> None:
        """SIGKILL: no cleanup of any kind."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def hearth(self, *args: str) -> subprocess.CompletedProcess:
        """`hearth ARGS` with this user's password on stdin (for `sync versions|restore|trash`)."""
        return subprocess.run([sys.executable, "-m", "services.cli", *args], input=PASSWORDS[self.user] + "\n",
                              capture_output=True, text=True, cwd=REPO, env=clean_environ(), timeout=60)

    def status(self) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "services.cli", "sync", "status", str(self.root)],
                              capture_output=True, text=True, cwd=REPO, env=clean_environ(), timeout=60)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tree(self) -> dict[str, tuple]:
        return tree(self.root)

    @staticmethod
    def wait_for(predicate, timeout: float = 20.0, what: str = "condition", interval: float = 0.05):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}")
