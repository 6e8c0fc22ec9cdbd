"""`hearth storage migrate`: every chunk moved to the other store while a real sync daemon serves real clients.

The migration runs as its own process and is killed with SIGKILL twice midway (when its progress row says
it copied some chunks), then resumed; sync clients upload and download all along. Afterwards the old store
is emptied by `hearth storage remove-old` (killed once midway too, and given a target that lost a chunk and
holds another damaged), and every file still downloads with the right content; then the same back to local
blobs.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import tomllib

import obstore
import pytest

from services.core.blobs import status_line
from services.core.config import load_config
from services.core.storage_commands import migration_lock
from services.core.tree import ChunkStore, chunk_id
from tests import seaweed as seaweed_module
from tests.daemons import serving
from tests.installation import free_port
from tests.sync_harness import Client, tree
from tests.test_sync_server import SyncDaemon

FILES = 2000

pytestmark = pytest.mark.skipif(seaweed_module.SESSION is not None,
                                reason="starts on local blobs by design; the session keeps every home in S3")


def migration_row(home) -> dict | None:
    db = home / "var" / "db" / "hearth.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        try:
            row = conn.execute("SELECT * FROM blob_migration").fetchone()
        except sqlite3.OperationalError:
            return None
    return dict(row) if row else None


def storage(daemon, *args: str) -> subprocess.Popen:
    """`hearth storage ARGS` as its own process, with the daemon's environment."""
    return subprocess.Popen([sys.executable, "-m", "services.cli", "--config", str(daemon.config),
                             "storage", *args], env=daemon.env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def migrate(daemon, *args: str) -> subprocess.Popen:
    return storage(daemon, "migrate", *args)


def local_chunks(home) -> list:
    blobs = home / "var" / "blobs"
    return [path for path in blobs.rglob("*") if path.is_file()] if blobs.exists() else []


def kill_remove_old(daemon, left) -> None:
    """`hearth storage remove-old`, SIGKILLed once `left()` (the old store's chunk count) went down."""
    total = left()
    process = storage(daemon, "remove-old")
    while left() == total:
        assert process.poll() is None, f"remove-old ended before it could be killed: {process.communicate()}"
        time.sleep(0.01)  # polling interval: the store's own count is what is waited for
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < left() < total


def kill_midway(daemon, args: tuple[str, ...], runs: int) -> None:
    """Start the migration, wait until its row says it copied chunks in this run, SIGKILL it."""
    process = migrate(daemon, *args)
    while True:
        row = migration_row(daemon.home)
        if row and row["runs"] == runs and row["chunks_done"] > 0:
            break
        assert process.poll() is None, f"the migration ended before it could be killed: {process.communicate()}"
        time.sleep(0.01)  # polling interval, not a synchronisation: the row is what is waited for
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert migration_row(daemon.home)["state"] == "copying"


def contents(root) -> dict[str, str]:
    return {path: hashlib.sha256(entry[1]).hexdigest() for path, entry in tree(root).items() if entry[0] == "file"}


class Traffic:
    """Clients syncing throughout: A writes a new file and syncs, B downloads, in a loop on a thread."""

    def __init__(self, a: Client, b: Client):
        self.a, self.b, self.rounds = a, b, 0
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                (self.a.root / "during" / f"{self.rounds}.txt").write_bytes(os.urandom(200))
                self.a.once()
                self.b.once()
                self.rounds += 1
        except BaseException as error:
            self.errors.append(error)

    def __enter__(self) -> "Traffic":
        (self.a.root / "during").mkdir(exist_ok=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=300)
        assert not self.errors, self.errors


def test_migration_to_s3_and_back_killed_twice_with_clients_syncing(tmp_path, seaweed, monkeypatch):
    (tmp_path / "home").mkdir()
    daemon = SyncDaemon(tmp_path / "home")
    daemon.env.update(seaweed.environ())  # the daemon's env file holds the S3 credentials before the migration
    bucket = seaweed.create_bucket()
    to_s3 = ("--to", "s3", "--s3-endpoint", seaweed.endpoint, "--s3-bucket", bucket, "--s3-prefix", "hearth/")
    with serving(daemon, "alice"):
        a = Client(daemon, tmp_path / "a", device="A")
        for n in range(FILES):
            (a.root / f"d{n % 20}").mkdir(exist_ok=True)
            (a.root / f"d{n % 20}" / f"f{n}.bin").write_bytes(os.urandom(64))
        a.once()
        b = Client(daemon, tmp_path / "b", device="B")
        b.once()

        with Traffic(a, b) as traffic:
            kill_midway(daemon, to_s3, runs=1)
            for name, value in seaweed.environ().items():
                monkeypatch.setenv(name, value)
            line = status_line(load_config(daemon.config, environ={}))
            assert re.fullmatch(r"blobs: s3://.* \(migrating; old chunks read from local .*\), \d+ of \d+ chunks "
                                r"copied by the last run \(`hearth storage migrate --to s3` resumes it if it "
                                r"stopped\): ok", line), line
            kill_midway(daemon, to_s3, runs=2)
            finished = migrate(daemon, "--to", "s3")  # the settings the migration began with
            out, err = finished.communicate(timeout=300)
            assert finished.returncode == 0, err
        assert traffic.rounds > 0
        assert migration_row(daemon.home)["state"] == "done" and migration_row(daemon.home)["runs"] == 3
        assert "resuming" in out and "`hearth storage remove-old` removes them" in out
        storage = tomllib.loads(daemon.config.read_text())["storage"]
        assert storage == {"blobs": "s3", "s3_endpoint": seaweed.endpoint, "s3_bucket": bucket,
                           "s3_region": "us-east-1", "s3_prefix": "hearth/"}
        a.once()
        expected = contents(a.root)
        assert len(expected) >= FILES + traffic.rounds

        kill_remove_old(daemon, lambda: len(local_chunks(daemon.home)))
        # The bucket lost a chunk and holds another damaged: the resumed run puts them back before deleting.
        client = seaweed.client(bucket)
        lost, rotten = (f"hearth/chunks/{path.name}" for path in local_chunks(daemon.home)[:2])
        obstore.delete(client, lost)
        obstore.put(client, rotten, b"bit rot" + bytes(obstore.get(client, rotten).bytes())[7:])
        removed = daemon.hearth("storage", "remove-old")
        assert removed.returncode == 0, removed.stderr
        assert re.fullmatch(r"removed \d+ chunks \(.* MiB\) from local blobs; each is in s3://.*, BLAKE3 checked "
                            r"\(2 were missing there or damaged, and copied again first\)\n", removed.stdout)
        assert local_chunks(daemon.home) == [] and list((daemon.home / "var" / "blobs").iterdir()) == []
        # The daemon started before the switch serves from the bucket alone once local blobs are gone.
        c = Client(daemon, tmp_path / "c", device="C")
        c.once()
        assert contents(c.root) == expected
        assert daemon.hearth("sync", "check").returncode == 0

    # Started again, the daemon reads hearth.toml's new [storage]; then everything goes back to local blobs.
    with serving(daemon):
        with Traffic(a, b):
            back = daemon.hearth("storage", "migrate", "--to", "local")
            assert back.returncode == 0, back.stderr
        assert tomllib.loads(daemon.config.read_text())["storage"]["blobs"] == "local"
        a.once()
        expected = contents(a.root)
        in_bucket = lambda: len(seaweed.keys(bucket, "hearth/chunks/"))  # noqa: E731
        kill_remove_old(daemon, in_bucket)
        removed = daemon.hearth("storage", "remove-old")
        assert removed.returncode == 0, removed.stderr
        assert in_bucket() == 0 and "copied again" not in removed.stdout
        d = Client(daemon, tmp_path / "d", device="D")
        d.once()
        assert contents(d.root) == expected


@pytest.fixture
def daemon(tmp_path, seaweed) -> SyncDaemon:
    """A sync daemon's home in tmp_path (not started) with alice, and the S3 credentials in its environment."""
    daemon = SyncDaemon(tmp_path)
    daemon.env.update(seaweed.environ())
    daemon.add_user("alice")
    return daemon


def finished_row(daemon, source: dict, target: dict, state: str = "done") -> None:
    """The blob_migration row a migration that got that far leaves."""
    with sqlite3.connect(daemon.home / "var" / "db" / "hearth.sqlite3") as db:
        db.execute("INSERT INTO blob_migration (id, source, target, state, started_at, updated_at) "
                   "VALUES (1, ?, ?, ?, 0, 0)", [json.dumps(source), json.dumps(target), state])


def test_a_second_migration_is_refused_while_one_runs(tmp_path, seaweed, daemon):
    before = daemon.config.read_text()
    with migration_lock(load_config(daemon.config, environ={})):  # as a running `hearth storage migrate` holds it
        result = daemon.hearth("storage", "migrate", "--to", "s3", "--s3-endpoint", seaweed.endpoint,
                               "--s3-bucket", seaweed.create_bucket())
    assert result.returncode == 3
    assert result.stderr.strip().splitlines() == [
        f"hearth: a storage migration is already running (pid {os.getpid()}); wait for it, or stop it and run the "
        "command again to resume"]
    assert daemon.config.read_text() == before and migration_row(tmp_path) is None


def test_an_unreachable_target_is_one_line_and_changes_nothing(tmp_path, daemon):
    before = daemon.config.read_text()
    endpoint = f"http://127.0.0.1:{free_port()}"
    result = daemon.hearth("storage", "migrate", "--to", "s3", "--s3-endpoint", endpoint, "--s3-bucket", "b")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"hearth: cannot migrate: the target store cannot be used: S3 endpoint {endpoint} does not answer; "
        "nothing was changed"]
    assert daemon.config.read_text() == before and migration_row(tmp_path) is None


def test_a_migration_killed_after_its_copy_but_before_the_switch_only_switches(seaweed, daemon):
    bucket = seaweed.create_bucket()
    target = {"blobs": "s3", "s3_endpoint": seaweed.endpoint, "s3_bucket": bucket, "s3_region": "us-east-1",
              "s3_prefix": ""}
    finished_row(daemon, {"blobs": "local"}, target)  # the row the killed run left
    args = ("storage", "migrate", "--to", "s3", "--s3-endpoint", seaweed.endpoint, "--s3-bucket", bucket)
    result = daemon.hearth(*args)
    assert result.returncode == 0, result.stderr
    assert "copied" not in result.stdout and tomllib.loads(daemon.config.read_text())["storage"] == target
    again = daemon.hearth(*args)
    assert again.returncode == 1
    assert again.stderr.startswith(f"hearth: the chunks are already in s3://{bucket}/ at {seaweed.endpoint}")


def test_remove_old_is_refused_until_a_migration_finished_and_switched(seaweed, daemon):
    ChunkStore(daemon.home / "var" / "blobs").put(chunk_id(b"a file"), b"a file")
    chunks = local_chunks(daemon.home)
    nothing = daemon.hearth("storage", "remove-old")
    assert nothing.returncode == 1
    assert nothing.stderr.strip() == "hearth: no storage migration was made here: there is no old store to remove"
    bucket = seaweed.create_bucket()
    target = {"blobs": "s3", "s3_endpoint": seaweed.endpoint, "s3_bucket": bucket, "s3_region": "us-east-1",
              "s3_prefix": ""}
    finished_row(daemon, {"blobs": "local"}, target, state="copying")
    copying = daemon.hearth("storage", "remove-old")
    assert copying.returncode == 1
    assert copying.stderr.strip() == (f"hearth: the migration to s3://{bucket}/ at {seaweed.endpoint} is not "
                                      "finished: run `hearth storage migrate --to s3` first (nothing was deleted)")
    with sqlite3.connect(daemon.home / "var" / "db" / "hearth.sqlite3") as db:
        db.execute("UPDATE blob_migration SET state = 'done'")
    unswitched = daemon.hearth("storage", "remove-old")
    assert unswitched.returncode == 1 and "to switch it (nothing was deleted)" in unswitched.stderr
    with migration_lock(load_config(daemon.config, environ={})):  # as a running `hearth storage migrate` holds it
        running = daemon.hearth("storage", "remove-old")
    assert running.returncode == 3 and "a storage migration is already running" in running.stderr
    assert local_chunks(daemon.home) == chunks and len(chunks) == 1
