"""Local-disk primitives of the sync client: real files in tmp_path, no mocks."""
from __future__ import annotations

import os
import threading
import time
import unicodedata
from datetime import datetime

import pytest

from services.sync.client.guard import PendingDeletions, deletion_guard
from services.sync.client.hashing import hash_bytes, hash_fd
from services.sync.client.ignore import IgnoreRules
from services.sync.client.localfs import (
    TEMP_PREFIX, HashMismatch, conflict_name, sanitize_device_name, unique_conflict_name,
    write_file_atomically)
from services.sync.client.names import case_clashes, check_name
from services.sync.client.scan import FileState, ScanResult, scan
from services.sync.client.state import ClientState, TrackedFile

WHEN = datetime(2026, 3, 4, 5, 6, 7)


def leftovers(directory):
    return [p.name for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX)]


# atomic write

def test_atomic_write_sets_content_mode_and_mtime(tmp_path):
    target = tmp_path / "run.sh"
    target.write_bytes(b"old")
    digest = write_file_atomically(target, [b"#!/bin/sh\n", b"echo hi\n"],
                                   expected_hash=hash_bytes(b"#!/bin/sh\necho hi\n"),
                                   mtime_ns=1_600_000_000_123_456_789, executable=True)
    assert target.read_bytes() == b"#!/bin/sh\necho hi\n"
    assert digest == hash_bytes(target.read_bytes())
    st = target.stat()
    assert st.st_mtime_ns == 1_600_000_000_123_456_789
    umask = os.umask(0)
    os.umask(umask)
    rw = 0o666 & ~umask
    assert st.st_mode & 0o777 == rw | ((rw & 0o444) >> 2)
    assert leftovers(tmp_path) == []

    write_file_atomically(target, [b"plain"], executable=False)
    assert target.stat().st_mode & 0o777 == rw
    assert target.read_bytes() == b"plain"


def test_atomic_write_replaces_by_rename_not_in_place(tmp_path):
    target = tmp_path / "f.txt"
    target.write_bytes(b"old")
    held = open(target, "rb")
    write_file_atomically(target, [b"new"])
    assert held.read() == b"old"  # the old inode was never written to
    held.close()
    assert target.read_bytes() == b"new"


def test_hash_mismatch_leaves_target_untouched(tmp_path):
    target = tmp_path / "doc.txt"
    target.write_bytes(b"precious")
    with pytest.raises(HashMismatch):
        write_file_atomically(target, [b"corrupted"], expected_hash=hash_bytes(b"intended"))
    assert target.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_crash_in_chunk_iterator_leaves_target_untouched(tmp_path):
    target = tmp_path / "doc.txt"
    target.write_bytes(b"precious")

    def chunks():
        yield b"half of the new"
        raise ConnectionError("server went away")

    with pytest.raises(ConnectionError):
        write_file_atomically(target, chunks())
    assert target.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []
    with pytest.raises(ConnectionError):
        write_file_atomically(tmp_path / "new.txt", chunks())
    assert not (tmp_path / "new.txt").exists() and leftovers(tmp_path) == []


def test_temp_files_are_ignored_by_default(tmp_path):
    rules = IgnoreRules()
    assert rules.ignored(TEMP_PREFIX + "abcd1234-report.docx")
    assert rules.ignored("sub/" + TEMP_PREFIX + "x-y")


# conflict names

def test_conflict_names():
    assert conflict_name("notes.txt", "laptop", WHEN) == "notes (conflict from laptop 2026-03-04 050607).txt"
    assert conflict_name("a/b/archive.tar.gz", "pc", WHEN) == "a/b/archive.tar (conflict from pc 2026-03-04 050607).gz"
    assert conflict_name(".bashrc", "pc", WHEN) == ".bashrc (conflict from pc 2026-03-04 050607)"
    assert conflict_name(".config.json", "pc", WHEN) == ".config (conflict from pc 2026-03-04 050607).json"
    assert conflict_name("Makefile", "pc", WHEN) == "Makefile (conflict from pc 2026-03-04 050607)"
    assert conflict_name("x", 'my/evil:dev*ice (1)', WHEN) == "x (conflict from my_evil_dev_ice _1_ 2026-03-04 050607)"
    assert sanitize_device_name("  ..  ") == "unknown device"
    long = conflict_name("a" * 250 + ".txt", "pc", WHEN)
    assert len(os.path.basename(long).encode()) <= 255 and long.endswith(").txt")


def test_unique_conflict_name_never_collides(tmp_path):
    original = tmp_path / "notes.txt"
    first = unique_conflict_name(original, "laptop", WHEN)
    assert first == str(tmp_path / "notes (conflict from laptop 2026-03-04 050607).txt")
    open(first, "w").close()
    second = unique_conflict_name(original, "laptop", WHEN)
    assert second == str(tmp_path / "notes (conflict from laptop 2026-03-04 050607) 2.txt")
    open(second, "w").close()
    assert unique_conflict_name(original, "laptop", WHEN).endswith(" 3.txt")


# ignore rules

def test_ignore_defaults():
    rules = IgnoreRules()
    for path in ["notes.txt~", ".notes.txt.swp", ".x.swx", "build.tmp", ".~lock.report.odt#",
                 "~$report.docx", "sub/.DS_Store", "Thumbs.db", "desktop.ini"]:
        assert rules.ignored(path), path
    assert rules.ignored(".hearth", is_dir=True) and rules.ignored(".hearth/state.sqlite3")
    for path in ["notes.txt", "report.docx", "swp", "tmp/file"]:
        assert not rules.ignored(path), path


def test_hearthignore_with_negation(tmp_path):
    (tmp_path / ".hearthignore").write_text(
        "# logs\n*.log\n!keep.log\nbuild/\n/top-only.txt\n!*.tmp\n!.hearth-tmp-*\n")
    rules = IgnoreRules.load(tmp_path)
    assert rules.ignored("debug.log") and rules.ignored("a/b/debug.log")
    assert not rules.ignored("keep.log") and not rules.ignored("a/keep.log")
    assert rules.ignored("build", is_dir=True) and rules.ignored("x/build/out.o")
    assert not rules.ignored("build")  # a file named build is not the directory pattern
    assert rules.ignored("top-only.txt") and not rules.ignored("sub/top-only.txt")
    assert not rules.ignored("cache.tmp")  # defaults can be re-included ...
    assert rules.ignored(".hearth-tmp-1-x")  # ... the client's own files cannot
    assert not IgnoreRules.load(tmp_path / "nowhere").ignored("debug.log")


# names

def test_check_name_reports_nfd_and_windows_problems():
    nfd = unicodedata.normalize("NFD", "café.txt")
    assert [p.code for p in check_name(nfd)] == ["not-nfc"]
    assert check_name(unicodedata.normalize("NFC", "café.txt")) == []
    assert {p.code for p in check_name("docs/CON.txt")} == {"windows-reserved"}
    assert {p.code for p in check_name("aux")} == {"windows-reserved"}
    assert {p.code for p in check_name("dir./x")} == {"trailing-dot-or-space"}
    assert {p.code for p in check_name("a:b?.txt")} == {"invalid-char"}
    assert all(p.severity == "warning" for p in check_name("a:b?.txt "))
    assert check_name("console.txt") == []


def test_check_name_calls_the_names_the_server_refuses_errors():
    for relpath in ("tab\there.txt", "d\u202e/x.txt", "x\u2069", "a/" + "é" * 128):
        assert [(p.severity, p.code) for p in check_name(relpath) if p.code == "refused-name"] == \
            [("error", "refused-name")], relpath
    assert check_name("é" * 127 + "x") == []


def test_case_clashes():
    nfc, nfd = unicodedata.normalize("NFC", "Café"), unicodedata.normalize("NFD", "CAFÉ")
    clashes = case_clashes(["a/README.md", "a/readme.md", "b.txt", nfc, nfd, "a/Readme.MD", "B.TXT"])
    assert clashes == sorted([("B.TXT", "b.txt"), tuple(sorted([nfc, nfd])),
                              ("a/README.md", "a/Readme.MD", "a/readme.md")])
    assert case_clashes(["a", "b", "a"]) == []


# scanner

def make_tree(root):
    (root / "d").mkdir()
    (root / "a.txt").write_bytes(b"aaa")
    (root / "d" / "b.txt").write_bytes(b"bbb")
    (root / "d" / "b.txt~").write_bytes(b"backup")


def counting_hasher():
    calls = []

    def hasher(fd):
        calls.append(fd)
        return hash_fd(fd)
    return hasher, calls


def test_scan_new_unchanged_changed_deleted(tmp_path):
    make_tree(tmp_path)
    first = scan(tmp_path, IgnoreRules(), {})
    assert set(first.changed) == {"a.txt", "d/b.txt"}
    assert first.changed["a.txt"].content_hash == hash_bytes(b"aaa")
    previous = dict(first.changed)

    hasher, calls = counting_hasher()
    again = scan(tmp_path, IgnoreRules(), previous, hasher=hasher)
    assert sorted(again.unchanged) == ["a.txt", "d/b.txt"] and calls == []

    (tmp_path / "a.txt").write_bytes(b"AAAA")
    (tmp_path / "d" / "b.txt").unlink()
    (tmp_path / "c.sh").write_bytes(b"x")
    (tmp_path / "c.sh").chmod(0o755)
    later = scan(tmp_path, IgnoreRules(), previous, hasher=hasher)
    assert set(later.changed) == {"a.txt", "c.sh"} and len(calls) == 2
    assert later.changed["c.sh"].mode_exec and not later.changed["a.txt"].mode_exec
    assert later.deleted == ["d/b.txt"]


def test_scan_fast_path_does_not_reread(tmp_path):
    """Accepted tradeoff: same size, mtime and inode means unchanged, unread."""
    f = tmp_path / "f.bin"
    f.write_bytes(b"original")
    previous = dict(scan(tmp_path, IgnoreRules(), {}).changed)
    st = f.stat()
    with open(f, "r+b") as handle:  # same inode, same size
        handle.write(b"ORIGINAL")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert scan(tmp_path, IgnoreRules(), previous).unchanged == ["f.bin"]
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert scan(tmp_path, IgnoreRules(), previous).changed["f.bin"].content_hash == hash_bytes(b"ORIGINAL")


def test_scan_touch_only_is_touched_not_changed(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"same")
    previous = dict(scan(tmp_path, IgnoreRules(), {}).changed)
    os.utime(f, ns=(1, 1_000_000_000))
    result = scan(tmp_path, IgnoreRules(), previous)
    assert list(result.touched) == ["f"] and result.changed == {}


def test_scan_reports_file_growing_while_hashed_as_unstable(tmp_path):
    f = tmp_path / "growing.log"
    f.write_bytes(os.urandom(1 << 20) * 16)
    started, stop = threading.Event(), threading.Event()

    def append():
        with open(f, "ab", buffering=0) as handle:
            while not stop.is_set():
                handle.write(b"more log\n")
                started.set()
                time.sleep(0.0005)

    writer = threading.Thread(target=append)
    writer.start()
    started.wait(5)

    def slow_hasher(fd):
        time.sleep(0.02)  # the writer gets the GIL at least once during the read
        return hash_fd(fd)
    try:
        result = scan(tmp_path, IgnoreRules(), {}, hasher=slow_hasher)
    finally:
        stop.set()
        writer.join()
    assert result.unstable == ["growing.log"] and result.changed == {}


def test_scan_skips_and_reports_symlinks_and_ignored(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "link").symlink_to(tmp_path / "d")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / ".hearth").mkdir()
    (tmp_path / ".hearth" / "state.sqlite3").write_bytes(b"x")
    previous = {"link": FileState(1, 1, 1, False, "h")}
    result = scan(tmp_path, IgnoreRules(), previous)
    assert sorted(result.symlinks) == ["dangling", "link"]
    assert set(result.changed) == {"a.txt", "d/b.txt"}  # not followed: no link/b.txt
    assert result.deleted == []  # a tracked file that became a symlink is not "deleted"


def test_scan_reports_name_problems(tmp_path):
    (tmp_path / unicodedata.normalize("NFD", "é.txt")).write_bytes(b"x")
    (tmp_path / "a:b").write_bytes(b"x")
    result = scan(tmp_path, IgnoreRules(), {})
    assert sorted(p.code for p in result.name_problems) == ["invalid-char", "not-nfc"]


def test_scan_speed_20000_files(tmp_path):
    for d in range(20):
        sub = tmp_path / f"dir{d}"
        sub.mkdir()
        for i in range(1000):
            (sub / f"f{i}.txt").write_bytes(b"%d" % i)
    start = time.perf_counter()
    first = scan(tmp_path, IgnoreRules(), {})
    cold = time.perf_counter() - start
    start = time.perf_counter()
    second = scan(tmp_path, IgnoreRules(), first.changed)
    warm = time.perf_counter() - start
    print(f"\nscan 20000 files: hashing {cold:.2f}s, fast path {warm:.2f}s")
    assert len(first.changed) == 20000 and len(second.unchanged) == 20000


# state database

def test_client_state_round_trip(tmp_path):
    path = tmp_path / ".hearth" / "state.sqlite3"
    state = ClientState(path)
    assert state.cursor is None and state.get_file("a") is None and state.device() == (None, None)
    tracked = TrackedFile("dir/a.txt", 3, 123, 456, True, "hash", "rev1", 7)
    state.put_file(tracked)
    state.put_files(TrackedFile(f"bulk/{i:05d}", i, i, i) for i in range(2500))
    state.set_cursor(42)
    state.set_device("dev-1", "laptop")
    state.set_last_error("server unreachable")
    state.close()

    state = ClientState(path)  # migrations are idempotent on reopen
    assert state.get_file("dir/a.txt") == tracked
    assert state.file_count() == 2501
    assert [f.relpath for f in state.iter_files()][:2] == ["bulk/00000", "bulk/00001"]
    assert len(list(state.iter_files())) == 2501
    assert state.cursor == 42 and state.device() == ("dev-1", "laptop")
    assert state.last_error == "server unreachable"
    assert state.file_states()["dir/a.txt"] == FileState(3, 123, 456, True, "hash")
    state.put_file(TrackedFile("dir/a.txt", 4, 124, 456, False, "hash2", "rev2", 8))
    assert state.get_file("dir/a.txt").server_revision == "rev2"
    state.delete_file("dir/a.txt")
    state.delete_files(f"bulk/{i:05d}" for i in range(2000))
    state.set_last_error(None)
    assert state.get_file("dir/a.txt") is None and state.file_count() == 500
    assert state.last_error is None
    state.close()


def test_scan_results_feed_state(tmp_path):
    make_tree(tmp_path)
    state = ClientState(tmp_path / ".hearth" / "state.sqlite3")
    result = scan(tmp_path, IgnoreRules(), state.file_states())
    state.put_files(TrackedFile.from_state(p, s) for p, s in result.changed.items())
    again = scan(tmp_path, IgnoreRules(), state.file_states())
    assert sorted(again.unchanged) == ["a.txt", "d/b.txt"] and again.changed == {}
    state.close()


# deletion guard

def test_deletion_guard(tmp_path):
    root = tmp_path / "sync"
    assert "missing" in deletion_guard(root, ScanResult(), 5)
    root.write_bytes(b"")
    assert "not a directory" in deletion_guard(root, ScanResult(), 5)
    root.unlink()
    root.mkdir()
    (root / ".hearth").mkdir()
    assert deletion_guard(root, ScanResult(deleted=["a"]), 1) is None  # a folder of one file emptied: fine
    eleven = ScanResult(deleted=[f"f{i}" for i in range(11)])
    assert "is empty" in deletion_guard(root, eleven, 11)
    assert deletion_guard(root, ScanResult(), 0) is None  # a new, empty folder is fine
    (root / "kept").write_bytes(b"x")
    assert deletion_guard(root, ScanResult(deleted=["a"]), 2) is None  # 50%, not more
    many = ScanResult(deleted=[f"f{i}" for i in range(11)])
    assert "11 of 20" in deletion_guard(root, many, 20)
    assert deletion_guard(root, many, 22) is None  # exactly half
    few = ScanResult(deleted=[f"f{i}" for i in range(10)])
    assert deletion_guard(root, few, 12) is None  # 10 files is under the minimum
    assert "cannot be read" in deletion_guard(root, ScanResult(errors=[("", "denied")]), 3)


def test_pending_deletions_gather_across_batches_and_settle():
    pending = PendingDeletions(settle=30.0, quick=0.0)
    pending.update(ScanResult(deleted=["a/1", "a/2"]), {"a/1", "a/2"}, [])
    assert pending.files == {"a/1", "a/2"} and pending.settle_in() == 0.0  # a few: no wait here
    batch = ScanResult(deleted=[f"b/{i}" for i in range(10)], unchanged=["a/2"])  # a/2 is back
    pending.update(batch, {"b", "a/2"}, ["b"])
    assert pending.files == {"a/1", *batch.deleted} and pending.dirs == {"b"}
    assert 29.0 < pending.settle_in() <= 30.0  # more than ten: the whole window from the last one
    pending.update(ScanResult(deleted=["a/1", "c"], dirs={"c"}), None, [])  # a full scan is the truth
    assert pending.files == {"a/1"} and pending.dirs == set()  # c became a directory: no deletion
    pending.discard(["a/1"])
    assert not pending and pending.settle_in() == 0.0
