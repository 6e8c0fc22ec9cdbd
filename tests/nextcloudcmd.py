"""The real Nextcloud command-line client (`nextcloudcmd` 3.7, Debian nextcloud-desktop-cmd) as the interop
tests and the benchmark drive it: `hearth up` for it, the 2,000-file tree, one client run, and the
requests it made as the front's access log records them.
"""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.installation import Installation, free_port, running

ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/1\.1" (?P<status>\d{3}) .*mirall/3')
SMALL_FILES = 2000
FOLDERS = ["Docs", "Photos", "Music", "Notes"]


@contextmanager
def hearth_for_nextcloudcmd(tmp_path_factory, name: str):
    """`hearth up` on a free loopback port (skipped where nextcloudcmd is missing), as its `.url`."""
    if shutil.which("nextcloudcmd") is None:
        pytest.skip("nextcloudcmd is not installed (Debian package nextcloud-desktop-cmd; .ci/run installs it)")
    port = free_port()
    installation = Installation(tmp_path_factory.mktemp(name), textwrap.dedent(f"""\
        data_dir = "var"
        [front]
        listen = "127.0.0.1:{port}"
        [supervisor]
        ready_timeout = 30
        """))
    installation.url = f"http://127.0.0.1:{port}"
    with running(installation):
        yield installation


def client_requests(hearth: Installation) -> list[tuple[str, str, int]]:
    """(method, target, status) of every request nextcloudcmd made, from the front's access log."""
    log = (hearth.var / "log" / "front.log").read_text(errors="replace")
    return [(m["method"], m["target"], int(m["status"])) for m in map(ACCESS.search, log.splitlines()) if m]


def write_small_tree(local: Path, count: int = SMALL_FILES) -> None:
    """File N is FOLDERS[N % 4]/sub{N % 3}/fileNNNN.txt, holding f"file {N}\\n" (1 + N % 7) times."""
    for n in range(count):
        folder = local / FOLDERS[n % len(FOLDERS)] / f"sub{n % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"file{n:04}.txt").write_bytes(f"file {n}\n".encode() * (1 + n % 7))


def local_files(local: Path) -> dict[str, str]:
    """Every synced file under `local` by its relative path: its SHA-256 (the client's own files left out)."""
    return {str(p.relative_to(local)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in local.rglob("*") if p.is_file() and not p.name.startswith((".sync_", "._sync_"))
            and ".sync-exclude" not in p.name}


def nextcloudcmd(local: Path, url: str, user: str, password: str, log: Path,
                 timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    """One `nextcloudcmd` run of `local` against `url`, its output appended to `log`: (result, wall seconds)."""
    started = time.monotonic()
    result = subprocess.run(["nextcloudcmd", "--non-interactive", "--max-sync-retries", "1", "-u", user,
                             "-p", password, str(local), url], capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - started
    with log.open("a") as out:
        out.write(result.stdout + result.stderr)
    return result, elapsed
