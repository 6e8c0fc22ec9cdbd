"""Disaster recovery with real processes: `hearth up`, real HTTP clients, kill -9, `hearth backup`, `hearth restore`.

The disaster test is the issue's: a running server with users, app passwords,
files with versions and a trash, a calendar, a contact, a share and a link;
everything killed with SIGKILL and the data directory deleted; the backup
restored into a fresh directory with no hearth.toml; started again; every
user's `hearth export`, trash, versions and links, and every app password,
the same as before.
"""
from __future__ import annotations

import json
import shutil
import threading
import time

from tests.disaster import (DENTIST, SECRET, USERS, Client, Restored, assert_consistent, home,
                            kill_everything, kill_when, populate, restore_into, start_backup, state_of, write_many)
from tests.installation import ADMIN_PASSWORD, OnePort, running


def test_a_dead_server_comes_back_whole_from_its_backup(tmp_path):
    h = home(tmp_path, secret=True)
    with running(h):
        tokens = populate(h)
        before = state_of(h, tokens, tmp_path / "before")
        backup = h.hearth("backup", "--to", str(tmp_path / "usb"))
        assert backup.returncode == 0, backup.stderr
        assert "3 users, 2 app passwords" in backup.stdout
        kill_everything(h.var)
    shutil.rmtree(h.var)  # the disk died

    fresh = tmp_path / "new-machine"
    restore = restore_into(fresh, "--from", str(tmp_path / "usb"))
    assert restore.returncode == 0, restore.stderr
    assert (fresh / "hearth.toml").read_text() == h.config.read_text()
    assert (fresh / "smtp.secret").read_text() == SECRET  # a file hearth.toml names
    assert f"restored {fresh / 'smtp.secret'}" in restore.stdout
    again = Restored(fresh, h.port)
    with running(again):
        after = state_of(again, tokens, tmp_path / "after")
    assert before["trash"] and before["versions"] and before["links"]
    assert "Documents" in str(before["bob's folders"]) and before["alice"]["counts"]["calendar_objects"] == 1
    assert before["app passwords"] == {"alice": 200, "bob": 200} and before["wrong password"] == 401
    assert after == before


def test_restore_refuses_a_data_directory_that_holds_anything(tmp_path):
    h = OnePort(tmp_path)
    assert h.hearth("init").returncode == 0
    assert h.hearth("backup", "--to", str(tmp_path / "b")).returncode == 0
    (h.var / "db" / "hearth.sqlite3").write_bytes(b"someone's data")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"a cat")
    littered = h.hearth("backup", "--to", str(tmp_path / "photos"))  # a typo must not fill a directory with chunks
    assert littered.returncode == 2 and "holds other files and no hearth backup" in littered.stderr
    assert [p.name for p in (tmp_path / "photos").iterdir()] == ["cat.jpg"]
    refused = h.hearth("restore", "--from", str(tmp_path / "b"))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (f"hearth: {h.var} is not empty: restore only into a new or empty data "
                                      "directory (nothing was changed)")
    assert (h.var / "db" / "hearth.sqlite3").read_bytes() == b"someone's data"


def test_a_backup_killed_midway_is_no_backup_and_the_next_run_completes_it(tmp_path):
    h = home(tmp_path)
    with running(h):
        write_many(h, "Many", 800)  # 800 chunks: several of the backup's batches
    usb = tmp_path / "usb"
    copied = lambda: [p for p in (usb / "blobs").rglob("*") if p.is_file() and not p.name.endswith(".tmp")]  # noqa
    kill_when(start_backup(h, "--to", str(usb)), copied)
    assert not (usb / "backup.json").exists()
    first = len(copied())
    assert 0 < first < 800
    refused = restore_into(tmp_path / "elsewhere", "--from", str(usb))
    assert refused.returncode == 2  # the wrong input: a backup that is not one
    assert "a backup that did not finish (no backup.json)" in refused.stderr
    assert not (tmp_path / "elsewhere" / "var").exists()

    resumed = h.hearth("backup", "--to", str(usb))
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads((usb / "backup.json").read_text())
    assert manifest["copied"]["already_there"] == first
    assert manifest["copied"]["chunks"] == manifest["chunks"] - first
    assert [p.name for p in (usb / "snapshots").iterdir()] == [manifest["snapshot"].rpartition("/")[2]]

    restored = restore_into(tmp_path / "elsewhere", "--from", str(usb))
    assert restored.returncode == 0, restored.stderr
    assert_consistent(tmp_path / "elsewhere")

    # A chunk that rotted on the backup disk is named, and nothing is restored.
    rotten = copied()[0]
    rotten.write_bytes(b"bit rot" + rotten.read_bytes()[7:])
    damaged = restore_into(tmp_path / "third", "--from", str(usb))
    assert damaged.returncode == 1
    assert f"chunk {rotten.name} does not match its content" in damaged.stderr and "damaged" in damaged.stderr
    assert not (tmp_path / "third" / "var").exists() and list((tmp_path / "third").iterdir()) == []

    # --verify finds it and copies it again from the server; then the backup restores.
    repaired = h.hearth("backup", "--to", str(usb), "--verify")
    assert repaired.returncode == 0, repaired.stderr
    assert ", 1 of them damaged and copied again)" in repaired.stdout
    assert restore_into(tmp_path / "third", "--from", str(usb)).returncode == 0


def test_a_backup_taken_while_clients_write_is_consistent(tmp_path):
    h = home(tmp_path)
    with running(h):
        admin = Client(h.port, "admin", ADMIN_PASSWORD)
        admin.ok("MKCOL", "/files/admin/Busy")
        stop, written = threading.Event(), []

        def write():
            n = 0
            while not stop.is_set():
                admin.ok("PUT", f"/files/admin/Busy/{n % 20}.txt", f"revision {n}\n".encode() * 5000)
                written.append(n)
                n += 1

        writer = threading.Thread(target=write)
        writer.start()
        try:
            while len(written) < 5:
                time.sleep(0.01)
            backup = h.hearth("backup", "--to", str(tmp_path / "usb"))
            during = len(written)
        finally:
            stop.set()
            writer.join()
        assert backup.returncode == 0, backup.stderr
        assert len(written) > during or during > 5  # the clients kept writing around it
    assert restore_into(tmp_path / "elsewhere", "--from", str(tmp_path / "usb")).returncode == 0
    assert_consistent(tmp_path / "elsewhere")


def test_the_litestream_replica_brings_back_what_changed_after_the_last_backup(tmp_path):
    h = home(tmp_path, '[backup]\nreplica = "replica"\nsync_interval = 0.5\n')
    with running(h) as up:
        assert "litestream: ready" in up.stdout
        h.ok("service", "litestream", "stop")
        tokens = populate(h)  # while nothing replicates: the status must say so, not "up to date"
        stopped = h.hearth("backup", "status")
        assert stopped.returncode == 4, stopped.stdout + stopped.stderr
        assert "behind: " in stopped.stdout and "up to date" not in stopped.stdout
        assert "hearth_litestream is not running" in stopped.stdout
        h.ok("service", "litestream", "start")
        assert h.hearth("backup", "--to", str(tmp_path / "usb")).returncode == 0
        # After the backup, changes that live in the database only: the replica must carry them.
        alice = Client(h.port, "alice", tokens["alice"])
        alice.ok("PUT", "/dav/calendars/alice/calendar/later.ics", DENTIST.replace(b"dentist", b"later"),
                 {"Content-Type": "text/calendar"})
        tokens["bob"] = Client(h.port, "bob", USERS["bob"]).json(
            "POST", "/api/v1/me/app-passwords", {"label": "new phone"})["password"]
        before = state_of(h, tokens, tmp_path / "before")
        status = h.wait_for(lambda: (lambda r: r if r.returncode == 0 and "up to date" in r.stdout else None)(
            h.hearth("backup", "status")), timeout=60, what="the replica to catch up")
        assert "replica file://" in status.stdout and "last backup: " in status.stdout
        kill_everything(h.var)
    shutil.rmtree(h.var)

    fresh = tmp_path / "new-machine"
    restore = restore_into(fresh, "--from", f"file://{tmp_path / 'home' / 'replica'}", "--blobs",
                           str(tmp_path / "usb"))
    assert restore.returncode == 0, restore.stderr
    again = Restored(fresh, h.port)
    with running(again):
        after = state_of(again, tokens, tmp_path / "after")
    assert before["alice"]["counts"]["calendar_objects"] == 2
    assert after == before
