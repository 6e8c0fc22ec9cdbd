"""Device-to-device edit latency through `hearth up` with one and with two sync (and files, dav) processes.

Two long-running `hearth sync` clients share a folder through the front end; a
small file is edited on A and timed until B has the new bytes (the sync
benchmark's edit_latency). With two instances the front end spreads the
clients' requests, so A's commit and B's long poll usually meet in different
processes, and B is woken by the change feed's data_version watcher.

    .venv/bin/python -m pytest tests/bench/test_instances_bench.py -s
"""
from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

from tests.bench.tables import median
from tests.bench.test_sync_bench import edit_latency
from tests.installation import OnePort, running
from tests.sync_harness import Client
from tests.test_sync_server import PASSWORDS

EDITS = 9


def latencies(root: Path, instances: int) -> list[float]:
    root.mkdir()
    hearth = OnePort(root, textwrap.dedent(f"""\
        [sync]
        instances = {instances}
        [files]
        instances = {instances}
        [dav]
        instances = {instances}
        """))
    with running(hearth):
        hearth.hearth("user", "add", "alice", "--password-stdin", input=PASSWORDS["alice"] + "\n", check=True)
        server = SimpleNamespace(port=hearth.port)
        a = Client(server, root / "A", device="A", folder="bench")
        b = Client(server, root / "B", device="B", folder="bench")
        (a.root / "note.txt").write_bytes(b"x" * 4096)
        a.start()
        b.start()
        try:
            b.wait_for(lambda: (b.root / "note.txt").exists(), what="the first copy on B", timeout=60)
            return [edit_latency(a.root, b.root, "note.txt") for _ in range(EDITS)]
        finally:
            a.stop()
            b.stop()


def test_edit_latency_with_one_and_two_instances(tmp_path: Path) -> None:
    results = {n: latencies(tmp_path / f"n{n}", n) for n in (1, 2)}
    for n, values in results.items():
        print(f"\ninstances = {n}: edit on A seen on B, p50 {median(values) * 1000:.0f} ms, "
              f"max {max(values) * 1000:.0f} ms over {len(values)} edits")
