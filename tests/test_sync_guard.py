"""The mass-deletion guard against a real deletion spree, and deletes sent in batches.

A real sync daemon on loopback and real `hearth sync` clients with their watchers: the
spree is made with `rm` and `rm -rf` in pieces, the way a person (or a script gone wrong)
deletes, and what reached the server is read from its change feed and its access log.
"""
from __future__ import annotations

import subprocess
import time

import pytest

from tests.daemons import serving
from tests.sync_harness import Client
from tests import test_sync_client
from tests.test_sync_client import folder_id, server_files, start, write
from tests.test_sync_server import SyncDaemon

running = test_sync_client.running  # the fixture, shared


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serving(SyncDaemon(tmp_path_factory.mktemp("syncd")), "alice") as daemon:
        yield daemon


def journal(server: SyncDaemon, fid: int, cursor: int = 0) -> tuple[list[dict], int]:
    """The folder's changes after `cursor` (each path once, in its latest state), and the new cursor."""
    changes = []
    while True:
        status, feed = server.request("GET", f"/sync/v1/folders/{fid}/changes?since={cursor}", user="alice")
        assert status == 200, feed
        changes += feed["changes"]
        cursor = feed["cursor"]
        if not feed["more"]:
            return changes, cursor


def requests_since(server: SyncDaemon, offset: int, fid: int) -> dict[str, int]:
    """Write requests to folder `fid` in the daemon's access log after byte `offset`, by endpoint."""
    counts: dict[str, int] = {}
    with open(server.log_path, "rb") as log:
        log.seek(offset)
        for line in log.read().decode(errors="replace").splitlines():
            for endpoint in ("commits", "commit", "delete"):
                if f'"POST /sync/v1/folders/{fid}/{endpoint} ' in line:
                    counts[endpoint] = counts.get(endpoint, 0) + 1
    return counts


def same_trees(one: Client, other: Client) -> bool:
    """Both trees equal (False while a client is still deleting under our feet)."""
    try:
        return one.tree() == other.tree()
    except FileNotFoundError:
        return False


def files_named(root, names) -> list[str]:
    return [str(root / name) for name in names]


def test_a_deletion_spree_in_pieces_is_held_whole_until_confirmed(server, tmp_path, running):
    a = Client(server, tmp_path / "A", device="A", folder="spree")
    b = Client(server, tmp_path / "B", device="B", folder="spree")
    loose = [f"loose/f{i:04d}.txt" for i in range(1200)]
    albums = [f"albums/{album}/p{i:03d}.txt" for album in "ab" for i in range(200)]
    keep = [f"keep/k{i:03d}.txt" for i in range(400)]
    for name in loose + albums + keep:
        write(a.root / name, f"{name}\n")
    a.once()
    b.once()
    start(running, a)
    start(running, b)
    assert sorted(p for p, v in b.tree().items() if v[0] == "file") == sorted(loose + albums + keep)
    fid = folder_id(server, "alice", "alice", "spree")
    _, before = journal(server, fid)

    # 80% of 2,000 files: `rm` in four calls 200 ms apart, then one `rm -rf` of two directories
    for start_at in range(0, 1200, 300):
        subprocess.run(["rm", *files_named(a.root, loose[start_at:start_at + 300])], check=True)
        time.sleep(0.2)  # the spree's own rhythm, not a wait for the client
    subprocess.run(["rm", "-rf", str(a.root / "albums" / "a"), str(a.root / "albums" / "b")], check=True)

    def deleted_on_server() -> list[str]:
        return [c["path"] for c in journal(server, fid, before)[0] if c["deleted"]]

    Client.wait_for(lambda: "1600 of 2000 tracked files" in a.status().stdout or deleted_on_server(),
                    timeout=30, what="A to hold back the whole spree")
    leaked = deleted_on_server()
    assert not leaked, f"{len(leaked)} deletions reached the server, e.g. {leaked[:3]}"
    assert len(server_files(server, "alice", fid)) == 2000 + 5  # and the directories loose, albums/{a,b}, keep
    b_files = {p for p, v in b.tree().items() if v[0] == "file"}
    assert b_files == set(loose + albums + keep)
    status = a.status()
    assert status.returncode == 1, status.stdout
    lines = {line.split(":", 1)[0]: line for line in status.stdout.splitlines()}
    assert "1600 of 2000 tracked files deleted here" in lines["held back"], status.stdout
    assert f"hearth sync confirm-deletes {a.root}" in lines["to confirm"], status.stdout
    assert f"hearth sync undo-deletes {a.root}" in lines["to undo"], status.stdout
    assert "ERROR" not in a.log()

    offset = server.log_path.stat().st_size
    confirmed = a.hearth("sync", "confirm-deletes", str(a.root))
    assert confirmed.returncode == 0 and "1600" in confirmed.stdout, confirmed.stdout + confirmed.stderr
    Client.wait_for(lambda: same_trees(a, b), timeout=60, what="B to follow the confirmed deletes")
    assert sorted(server_files(server, "alice", fid)) == sorted(["albums", "keep", "loose", *keep])
    sent = requests_since(server, offset, fid)
    assert sent.get("delete", 0) == 0 and sent.get("commits", 0) <= 5, sent
    Client.wait_for(lambda: a.status().returncode == 0, timeout=20, what="A to say in sync")
    assert "held back" not in a.status().stdout

    # undo: a second spree is brought back from the server, and nothing leaves it
    subprocess.run(["rm", "-rf", str(a.root / "keep")], check=True)
    Client.wait_for(lambda: "to undo:" in a.status().stdout, timeout=30, what="A to hold back deleting keep/")
    undone = a.hearth("sync", "undo-deletes", str(a.root))
    assert undone.returncode == 0, undone.stdout + undone.stderr
    Client.wait_for(lambda: same_trees(a, b), timeout=30, what="keep/ back on A")
    assert sorted(server_files(server, "alice", fid)) == sorted(["albums", "keep", "loose", *keep])
    Client.wait_for(lambda: a.status().returncode == 0, timeout=20, what="A to say in sync again")
    assert a.stop() == 0 and b.stop() == 0
    assert "ERROR" not in a.log() + b.log()


def test_thousands_of_deletes_travel_in_a_handful_of_requests(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A", folder="bulk-delete")
    b = Client(server, tmp_path / "B", device="B", folder="bulk-delete")
    bulk = [f"bulk/d{i // 100:02d}/f{i:04d}.txt" for i in range(2000)]
    for name in bulk + ["kept.txt"]:
        write(a.root / name, f"{name}\n")
    a.once()
    fid = folder_id(server, "alice", "alice", "bulk-delete")
    assert len(server_files(server, "alice", fid)) == 2001 + 21

    subprocess.run(["rm", "-rf", str(a.root / "bulk")], check=True)
    offset = server.log_path.stat().st_size
    a.once("--confirm-deletes")
    sent = requests_since(server, offset, fid)
    assert sent.get("delete", 0) == 0 and 1 <= sent.get("commits", 0) <= 5, sent
    assert sorted(server_files(server, "alice", fid)) == ["kept.txt"]
    b.once()
    assert sorted(b.tree()) == ["kept.txt"]
    assert "429" not in a.log() and "ERROR" not in a.log() and "server refused" not in a.log()
