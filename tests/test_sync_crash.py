"""Crash safety and deltas of the sync client, with real processes and real signals.

Each test runs its own sync daemon in its own tmp_path and deletes everything it
wrote when it ends (big files: at most ~600 MB on disk at a time). Nothing is
mocked: clients are `hearth sync DIR …` processes, crashes are SIGKILL.
"""
from __future__ import annotations

import io
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import blake3
import pytest

from services.core.tree import chunk_stream
from services.sync.client.localfs import TEMP_PREFIX
from tests.installation import clean_environ
from tests.sync_harness import REPO, Client
from tests.test_sync_server import PASSWORDS, SyncDaemon

MiB = 1024 * 1024
PIECE = 4 * MiB

SUMMARY = re.compile(r"in sync: (\d+) uploaded \((\d+) chunks, (\d+) bytes sent\), (\d+) downloaded "
                     r"\((\d+) chunks fetched, (\d+) found locally\)")
DOWNLOADED = re.compile(r"downloaded (\S+) \((\d+) bytes\): (\d+) chunks fetched, (\d+) already here"
                        r"(?:, resumed after (\d+))?")


# --- helpers ------------------------------------------------------------------

@pytest.fixture
def server(tmp_path):
    daemon = SyncDaemon(_mkdir(tmp_path / "server"))
    daemon.add_user("alice")
    daemon.start()
    clients: list[subprocess.Popen] = []
    daemon.spawned = clients
    yield daemon
    for process in clients:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    if daemon.process.poll() is None:
        daemon.process.send_signal(signal.SIGTERM)
        daemon.process.wait(timeout=15)
    daemon.stderr.close()
    shutil.rmtree(tmp_path, ignore_errors=True)  # big files: never left for pytest's keep-3 policy


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_random(path: Path, size: int, seed: int) -> None:
    rng = random.Random(seed)
    with open(path, "wb") as out:
        left = size
        while left:
            n = min(PIECE, left)
            out.write(rng.randbytes(n))
            left -= n


def file_hash(path: Path) -> str:
    hasher = blake3.blake3()
    with open(path, "rb") as f:
        while piece := f.read(PIECE):
            hasher.update(piece)
    return hasher.hexdigest()


def summary(stderr: str) -> dict[str, int]:
    found = SUMMARY.findall(stderr)
    assert found, f"no 'in sync' summary line in:\n{stderr[-3000:]}"
    keys = ("uploaded", "sent_chunks", "sent_bytes", "downloaded", "fetched", "found_locally")
    return dict(zip(keys, map(int, found[-1])))


def folder_id(daemon: SyncDaemon, name: str = "Docs") -> int:
    status, listing = daemon.request("GET", "/sync/v1/folders", user="alice")
    assert status == 200, listing
    return next(f["id"] for f in listing if f["name"] == name)


def server_file(daemon: SyncDaemon, relpath: str) -> dict | None:
    """The live revision of `relpath` from the change feed (None if absent)."""
    status, listing = daemon.request("GET", "/sync/v1/folders", user="alice")
    if status != 200 or not any(f["name"] == "Docs" for f in listing):
        return None
    fid = folder_id(daemon)
    found, since = None, 0
    while True:
        status, feed = daemon.request("GET", f"/sync/v1/folders/{fid}/changes?since={since}", user="alice")
        assert status == 200, feed
        for change in feed["changes"]:
            if change["path"] == relpath:
                found = None if change["deleted"] else change
        since = feed["cursor"]
        if not feed["more"]:
            return found


def spawn(daemon: SyncDaemon, client: Client, *extra: str) -> subprocess.Popen:
    """The client as a process of our own (stderr appended to its log); not waited for."""
    log = open(client.log_path, "a")
    process = subprocess.Popen(client.argv(*extra), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=log, cwd=REPO, env=clean_environ(), text=True)
    log.close()
    process.stdin.write(PASSWORDS[client.user] + "\n")
    process.stdin.close()
    daemon.spawned.append(process)
    return process


def hearth_check(daemon: SyncDaemon, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(daemon.config), "sync", "check",
                           *extra], capture_output=True, text=True, cwd=daemon.home, env=daemon.env, timeout=120)


# --- 1. delta -------------------------------------------------------------------

def test_one_byte_inserted_in_a_100_mib_file_sends_and_fetches_only_its_chunks(server, tmp_path):
    a, b = Client(server, tmp_path / "A", device="A"), Client(server, tmp_path / "B", device="B")
    big = a.root / "big.bin"
    write_random(big, 100 * MiB, seed=1)
    first = summary(a.once().stderr)
    assert first["uploaded"] == 1 and first["sent_bytes"] == 100 * MiB
    assert summary(b.once().stderr)["downloaded"] == 1
    assert file_hash(b.root / "big.bin") == file_hash(big)

    edited = a.root / "big.bin.new"  # head + b"x" + tail, then moved over the original
    with open(big, "rb") as src, open(edited, "wb") as out:
        left = 50 * MiB
        while left:
            piece = src.read(min(PIECE, left))
            out.write(piece)
            left -= len(piece)
        out.write(b"x")
        shutil.copyfileobj(src, out, PIECE)
    os.replace(edited, big)
    want = file_hash(big)

    pushed = summary(a.once().stderr)
    print(f"after inserting one byte: A sent {pushed['sent_chunks']} chunks ({pushed['sent_bytes']} bytes)")
    assert pushed["uploaded"] == 1 and 1 <= pushed["sent_chunks"] <= 3, pushed
    assert pushed["sent_bytes"] <= 3 * 4 * MiB
    total = len(server_file(server, "big.bin")["chunks"])

    result = b.once()
    pulled = summary(result.stderr)
    print(f"B: {pulled['fetched']} chunks fetched, {pulled['found_locally']} found locally (of {total})")
    assert pulled["downloaded"] == 1 and 1 <= pulled["fetched"] <= 3, pulled
    assert pulled["fetched"] + pulled["found_locally"] == total, (pulled, total)
    assert file_hash(b.root / "big.bin") == want
    assert os.stat(b.root / "big.bin").st_size == 100 * MiB + 1
    assert [p.name for p in b.root.iterdir() if p.name.startswith(TEMP_PREFIX)] == []


# --- 2. kill -9 mid-download ------------------------------------------------------

def test_download_killed_mid_file_resumes_without_fetching_verified_chunks_again(server, tmp_path):
    a, b = Client(server, tmp_path / "A", device="A"), Client(server, tmp_path / "B", device="B")
    write_random(a.root / "big.bin", 200 * MiB, seed=2)
    a.once()
    want = file_hash(a.root / "big.bin")
    total = len(server_file(server, "big.bin")["chunks"])

    target = b.root / "big.bin"
    process = spawn(server, b, "--once")
    seen_real, partial_size, partial = False, 0, None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if os.path.lexists(target):
            seen_real = True  # a partial file under its real name
            break
        if process.poll() is not None:
            break
        try:
            partial = next((b.root / n for n in os.listdir(b.root)
                            if n.startswith(TEMP_PREFIX) and n.endswith("-big.bin")), None)
            partial_size = os.stat(partial).st_size if partial else 0
        except FileNotFoundError:
            partial_size = 0
        if partial_size >= 40 * MiB:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait(timeout=30)
    assert not seen_real, "big.bin appeared under its real name while it was downloading"
    assert process.returncode == -signal.SIGKILL, (
        f"B exited {process.returncode} before it could be killed (partial at {partial_size} bytes)\n{b.log()}")
    print(f"killed B with its partial file at {partial_size / MiB:.1f} MiB")
    assert not os.path.lexists(target)
    assert partial is not None and partial.name.startswith(f"{TEMP_PREFIX}r") and partial.exists()

    result = b.once()
    found = [m for m in DOWNLOADED.findall(result.stderr) if m[0] == "big.bin"]
    assert found, result.stderr[-3000:]
    _, size, fetched, here, resumed = found[-1]
    fetched, here, resumed = int(fetched), int(here), int(resumed or 0)
    print(f"resumed after {resumed} of {total} chunks: {fetched} fetched, {here} already here")
    assert int(size) == 200 * MiB
    assert resumed > 0, "the restarted download did not resume from the partial file"
    assert fetched < total
    assert fetched == total - resumed, "chunks already verified in the partial file were fetched again"
    assert summary(result.stderr)["fetched"] == fetched
    assert file_hash(target) == want
    assert [n for n in os.listdir(b.root) if n.startswith(TEMP_PREFIX)] == []


# --- 3. kill -9 of the server mid-upload --------------------------------------------

def test_server_killed_mid_upload_the_client_finishes_after_a_restart(server, tmp_path):
    a, b = Client(server, tmp_path / "A", device="A"), Client(server, tmp_path / "B", device="B")
    write_random(a.root / "big.bin", 150 * MiB, seed=3)
    with open(a.root / "big.bin", "rb") as f:
        total = sum(1 for _ in chunk_stream(f))
    def stored() -> int:
        return sum(1 for _ in server.store.stored())

    before = stored()
    process = spawn(server, a, "--scan-interval", "60")
    Client.wait_for(lambda: stored() - before >= 15 or process.poll() is not None, timeout=60,
                    what="A's upload to be under way", interval=0.005)
    assert process.poll() is None, a.log()
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)
    at_kill = stored() - before
    print(f"killed the server with {at_kill} of {total} chunks stored")
    assert at_kill < total and nothing_committed(server)
    time.sleep(1.0)  # A notices and backs off
    server.restart()

    revision = Client.wait_for(lambda: server_file(server, "big.bin"), timeout=90,
                               what="A to finish the upload after the restart", interval=0.2)
    assert process.poll() is None, a.log()
    assert revision["size"] == 150 * MiB and len(revision["chunks"]) == total
    assert "server unreachable" in a.log()
    b.once()
    assert file_hash(b.root / "big.bin") == file_hash(a.root / "big.bin")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0, a.log()

    check = hearth_check(server)
    assert check.returncode == 0, check.stdout + check.stderr
    verify = hearth_check(server, "--verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    print(check.stdout.strip())


def nothing_committed(daemon: SyncDaemon) -> bool:
    """Nothing was committed before the kill (the upload really was cut short)."""
    from services.core.db import db_path, open_db
    db = open_db(db_path(daemon.home / "var"))
    try:
        return db.execute("SELECT COUNT(*) FROM revisions WHERE path = 'big.bin'").fetchone()[0] == 0
    finally:
        db.close()


# --- 4. memory ------------------------------------------------------------------------

def test_a_300_mib_file_uploads_in_bounded_memory(server, tmp_path):
    a = Client(server, tmp_path / "A", device="A")
    write_random(a.root / "big.bin", 300 * MiB, seed=4)
    result = subprocess.run(["/usr/bin/time", "-v", *a.argv("--once")], input=PASSWORDS["alice"] + "\n",
                            capture_output=True, text=True, cwd=REPO, env=clean_environ(), timeout=150)
    assert result.returncode == 0, result.stderr[-4000:]
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    print(f"peak RSS of the client uploading 300 MiB: {peak_kb / 1024:.1f} MiB")
    assert summary(result.stderr)["uploaded"] == 1
    assert server_file(server, "big.bin")["size"] == 300 * MiB
    assert peak_kb * 1024 < 200 * 1000 * 1000, f"peak RSS {peak_kb} kB"


# --- 5. a file that changes while it is uploaded --------------------------------------------

def test_a_file_appended_to_during_the_upload_is_never_committed_torn(server, tmp_path):
    a, b = Client(server, tmp_path / "A", device="A"), Client(server, tmp_path / "B", device="B")
    path = a.root / "growing.log"
    write_random(path, 24 * MiB, seed=5)  # big enough that cutting it takes a while
    rng = random.Random(55)
    stop = threading.Event()
    appended = []

    def writer() -> None:
        end = time.monotonic() + 2.0
        with open(path, "ab", buffering=0) as out:
            while time.monotonic() < end:
                record = rng.randbytes(rng.randrange(1, 8192))
                out.write(record)
                appended.append(len(record))
                time.sleep(0.01)
        stop.set()

    thread = threading.Thread(target=writer)
    process = spawn(server, a, "--once")
    thread.start()
    thread.join(timeout=30)
    assert stop.is_set() and len(appended) > 50
    code = process.wait(timeout=120)
    assert code in (0, 1), a.log()  # 1: still changing when it gave up; either is honest
    a.once()
    final = path.read_bytes()

    b.once()
    assert file_hash(b.root / "growing.log") == blake3.blake3(final).hexdigest()

    fid = folder_id(server)
    status, history = server.request("GET", f"/sync/v1/folders/{fid}/versions?path=growing.log", user="alice")
    assert status == 200 and history["versions"], history
    print(f"{len(appended)} appends; {len(history['versions'])} versions committed, first run exited {code}")
    assert history["versions"][0]["size"] == len(final)
    for version in history["versions"]:  # each one a real state of the file: a prefix of the final content
        size = version["size"]
        assert size <= len(final) and sum(n for _, n in version["chunks"]) == size, version["id"]
        expected = [[c.id, c.length] for c in chunk_stream(io.BytesIO(final[:size]))]
        assert version["chunks"] == expected, f"revision {version['id']} ({size} bytes) is torn"
    check = hearth_check(server, "--verify")
    assert check.returncode == 0, check.stdout + check.stderr


# --- progress on a terminal ------------------------------------------------------

def test_a_long_transfer_shows_a_progress_bar_on_a_terminal(server, tmp_path):
    """On a TTY a transfer over 8 MiB draws a bar with its rate; piped, the log has no bar."""
    import fcntl
    import pty
    import struct
    import termios

    a = Client(server, _mkdir(tmp_path / "A"), device="A")
    (a.root / "video.bin").write_bytes(random.Random(7).randbytes(24 * MiB))
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    process = subprocess.Popen(a.argv("--once"), stdin=subprocess.PIPE, stdout=secondary, stderr=secondary,
                               cwd=REPO, env=clean_environ(), text=True)
    os.close(secondary)
    process.stdin.write(PASSWORDS["alice"] + "\n")
    process.stdin.close()
    shown = b""
    while True:
        try:
            data = os.read(primary, 65536)
        except OSError:  # the other side closed: the process is done
            break
        if not data:
            break
        shown += data
    os.close(primary)
    assert process.wait(timeout=60) == 0, shown.decode(errors="replace")
    text = shown.decode(errors="replace")
    # the bar: what, how much of the total, the rate ("?B/s" until a tenth of a second has passed)
    assert "uploading" in text and "/24.0M" in text and re.search(r"[\d?][kMG]?B/s", text), text[-2000:]
    piped = Client(server, _mkdir(tmp_path / "B"), device="B").once()
    assert "B/s]" not in piped.stderr and "in sync" in piped.stderr
