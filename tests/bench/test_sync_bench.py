"""hearth's file sync next to Syncthing and a plain rsync copy: one run, one data set, on loopback.

Three systems move the same data set from a directory A to a directory B:

* hearth: the sync daemon (`services.sync`, on 127.0.0.1) and two long-running
  clients, A and B (watcher + change feed), both alice's devices on one folder.
  New data is moved into A with one rename, as for Syncthing; a phase ends when
  B holds every path A does (downloads appear under their names only when
  complete) and B's tree matches A's.
* Syncthing (Debian's package): two instances with homes of their own, GUI/REST
  on 127.0.0.1, listening on tcp://127.0.0.1:PORT, each told the other's static
  address; global and local discovery, relays, NAT traversal, crash and usage
  reporting, upgrades and low CPU priority all off; one send-receive folder with
  the watcher on at its shortest delay (fsWatcherDelayS = 1). New data is moved
  into A with one rename and A is told to scan (POST /rest/db/scan); the run
  ends when both instances report the folder idle with nothing needed
  (/rest/db/status) and B's tree matches A's.
* rsync: `rsync -a A/ dest/`, the physical floor of a plain local copy.
* hearth-s3: the initial sync (the small files, then the big file) again, on a
  server of its own whose chunks are in a bucket of a real SeaweedFS on
  loopback (tests/seaweed.py), with clients A and B of its own, once the other
  systems are stopped: the goal is a full sync within 1.5x of local disk.

The data set (scaled by HEARTH_BENCH_SCALE, default 1): 10,000 small files of
16-24 KiB of random bytes in a tree at most 5 levels deep with some non-ASCII
names, then one 512 MiB random file: two phases, so small files/s and big-file
MB/s come apart. Then, with everything running: five one-file edits on A timed
until B holds the new bytes (median), and one byte inserted at 100 MiB into the
big file (1/5 of it when smaller), timed until B has it, with the bytes it cost
(hearth: the chunks A sent and the new chunks of the server's revision, which
is what B fetches; Syncthing: the connection byte counters of
/rest/system/connections). Peak RSS (psutil, every 50 ms, the process and its
children) is taken during the full sync; last, a hearth client's RSS once its
long-running process has finished its first cycle on 100,000 tiny files.

Timings are printed with the targets, never asserted. Correctness is: after
every phase B's tree equals A's (paths, bytes, mtime, exec bit), for hearth,
Syncthing and rsync alike.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.bench.tables import fmt, format_table, median, ratio
from tests.bench.test_front_throughput import Daemon, MachineLoad, free_port
from tests.installation import clean_environ
from tests.sync_harness import REPO, Client
from tests.test_sync_server import PASSWORDS, SyncDaemon

KIB, MIB = 1024, 1024 * 1024
SCALE = float(os.environ.get("HEARTH_BENCH_SCALE", "1"))
SMALL_FILES = max(50, round(10_000 * SCALE))
BIG_BYTES = max(8 * MIB, round(512 * MIB * SCALE) // MIB * MIB)
MANY_FILES = max(1_000, round(100_000 * SCALE))
EDITS = 5
PHASE_TIMEOUT = 420.0       # one phase of one system
LATENCY_TIMEOUT = 60.0
START_TIMEOUT = 120.0
POLL = 0.05
RSS_INTERVAL = 0.05
FOLDER = "bench"

GOAL_SMALL_FPS = 1_000
GOAL_EDIT_P50 = 1.0
GOAL_MANY_RSS_MB = 150
GOAL_S3_VS_LOCAL = 1.5  # the initial sync with the server's chunks in S3 (loopback SeaweedFS) vs local disk

pytestmark = [
    pytest.mark.timeout(1200),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc, uses inotify: Linux only"),
]

# Any level: the hearth client's own state, Syncthing's marker and temporary files.
JUNK = re.compile(r"^(\.hearth|\.stfolder$|\.stversions$|\.syncthing\.|~syncthing~)")


# -- the data set --------------------------------------------------------------------------

TOP = ["docs", "photos", "Фото", "日本語", "music", "code", "backup", "naïve café"]


def small_dirs() -> list[str]:
    """The directories of the small-file tree: fan-outs 8, 4, 3, 2, so at most 4 levels (5 with the file)."""
    dirs, level = [""], [""]
    for depth, fanout in enumerate([8, 4, 3, 2]):
        level = [f"{parent}/{TOP[i] if depth == 0 else ('ünï' if i == 1 else 's') + str(i)}".lstrip("/")
                 for parent in level for i in range(fanout)]
        dirs += level
    return dirs


def small_name(i: int) -> str:
    if i % 40 == 0:
        return f"日本語の文書-{i}.bin"
    if i % 25 == 0:
        return f"naïve-café-{i}.txt"
    if i % 60 == 1:
        return f"Ωmega ñ {i}.md"
    return f"f{i:05d}.dat"


def write_small_files(root: Path, count: int) -> list[str]:
    """`count` files of 16-24 KiB of random bytes under root/small; their relative paths."""
    dirs, paths = small_dirs(), []
    for i in range(count):
        relpath = "/".join(p for p in ("small", dirs[i % len(dirs)], small_name(i)) if p)
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(16 * KIB + (i * 7919) % (8 * KIB)))
        paths.append(relpath)
    return paths


def write_big_file(path: Path, size: int) -> None:
    with open(path, "wb") as out:
        left = size
        while left:
            block = os.urandom(min(left, 8 * MIB))
            out.write(block)
            left -= len(block)


def fingerprint(root: Path, content: bool = True) -> dict[str, tuple]:
    """relpath -> ("dir",) or ("file", size, sha256 or None, mtime_ns, executable), without JUNK."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not JUNK.match(d)]
        base = Path(dirpath)
        for name in dirnames:
            found[str((base / name).relative_to(root))] = ("dir",)
        for name in filenames:
            if JUNK.match(name):
                continue
            path = base / name
            try:
                st = path.lstat()
                digest = None
                if content:
                    with open(path, "rb") as f:
                        digest = hashlib.file_digest(f, "sha256").hexdigest()
            except FileNotFoundError:
                continue
            found[str(path.relative_to(root))] = ("file", st.st_size, digest, st.st_mtime_ns,
                                                  bool(st.st_mode & 0o100))
    return found


def tree_difference(a: Path, b: Path, content: bool = True) -> str:
    """'' when the trees match, else a few of the differences."""
    left, right = fingerprint(a, content), fingerprint(b, content)
    if left == right:
        return ""
    only_a = sorted(set(left) - set(right))
    only_b = sorted(set(right) - set(left))
    differ = sorted(p for p in set(left) & set(right) if left[p] != right[p])
    parts = [f"{len(only_a)} only in {a.name}: {only_a[:5]}", f"{len(only_b)} only in {b.name}: {only_b[:5]}",
             f"{len(differ)} differ: {[(p, left[p][:2] + left[p][3:], right[p][:2] + right[p][3:]) for p in differ[:5]]}"]
    return "; ".join(parts)


def assert_same(system: str, phase: str, a: Path, b: Path) -> None:
    difference = tree_difference(a, b)
    assert not difference, f"{system}, {phase}: B's tree is not A's: {difference}"


# -- peak RSS ------------------------------------------------------------------------------

class RssSampler:
    """Peak RSS of named processes (each with its children), sampled every 50 ms in a thread."""

    def __init__(self):
        import psutil
        self.psutil = psutil
        self.watched: dict[str, int] = {}
        self.peaks: dict[str, int] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def watch(self, name: str, pid: int) -> None:
        with self.lock:
            self.watched[name] = pid

    def unwatch(self, name: str) -> None:
        with self.lock:
            self.watched.pop(name, None)

    def rss(self, pid: int) -> int:
        try:
            process = self.psutil.Process(pid)
            total = process.memory_info().rss
            for child in process.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except self.psutil.Error:
                    pass
            return total
        except self.psutil.Error:
            return 0

    def peak_mb(self, *names: str) -> float | None:
        values = [self.peaks[n] for n in names if n in self.peaks]
        return max(values) / 1e6 if values else None

    def _run(self) -> None:
        while not self.stopping.wait(RSS_INTERVAL):
            with self.lock:
                watched = dict(self.watched)
            for name, pid in watched.items():
                self.peaks[name] = max(self.peaks.get(name, 0), self.rss(pid))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)


# -- hearth --------------------------------------------------------------------------------

def hearth_once(client: Client, rss: RssSampler, name: str, timeout: float) -> tuple[float, str]:
    """`hearth sync DIR --once` with its RSS sampled as `name`: (seconds, its log); asserts exit 0."""
    began = time.monotonic()
    with open(client.log_path, "a") as log:
        log.write(f"--- bench: {name} --once\n")
        log.flush()
        offset = log.tell()
        process = subprocess.Popen(client.argv("--once"), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=log, cwd=REPO, env=clean_environ(), text=True)
    rss.watch(name, process.pid)
    try:
        process.stdin.write(PASSWORDS[client.user] + "\n")
        process.stdin.close()
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"hearth {name}: --once still running after {timeout:.0f} s\n"
                             f"{client.log()[-3000:]}") from None
    finally:
        rss.unwatch(name)
    seconds = time.monotonic() - began
    with open(client.log_path, errors="replace") as log:
        log.seek(offset)
        text = log.read()
    assert code == 0, f"hearth {name}: --once exited {code}\n{text[-4000:]}"
    return seconds, text


def client_status(root: Path) -> dict:
    """The client's own record of its last cycle (what `hearth sync status` reads), without a subprocess."""
    try:
        db = sqlite3.connect(f"file:{root / '.hearth' / 'state.sqlite3'}?mode=ro", uri=True, timeout=1)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = 'status'").fetchone()
        finally:
            db.close()
        return json.loads(row[0]) if row and row[0] else {}
    except (sqlite3.Error, ValueError):
        return {}


def hearth_start(client: Client, timeout: float) -> Client:
    """The long-running client; returns once it has recorded a first cycle, in sync, under its own pid."""
    log = open(client.log_path, "a")
    log.write("--- bench: long-running client\n")
    log.flush()
    client.process = subprocess.Popen(client.argv(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                      stderr=log, cwd=REPO, env=clean_environ(), text=True)
    log.close()
    client.process.stdin.write(PASSWORDS[client.user] + "\n")
    client.process.stdin.close()
    pid = client.process.pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert client.process.poll() is None, f"hearth client {client.device} exited:\n{client.log()[-3000:]}"
        status = client_status(client.root)
        if status.get("pid") == pid and status.get("state") == "in sync":
            return client
        time.sleep(0.2)
    raise AssertionError(f"hearth client {client.device}: no first cycle in {timeout:.0f} s\n{client.log()[-3000:]}")


def hearth_stop(client: Client) -> None:
    if client.process is not None and client.process.poll() is None:
        client.stop()


SENT = re.compile(r"\((\d+) chunks, (\d+) bytes sent\)")
FETCHED = re.compile(r"\((\d+) chunks fetched, \d+ found locally\)")  # the cycle summaries, not per-file lines


def sent_bytes(log_text: str) -> tuple[int, int]:
    """(chunks, bytes) uploaded, summed over the client's summary lines in `log_text`."""
    found = [(int(c), int(b)) for c, b in SENT.findall(log_text)]
    return sum(c for c, _ in found), sum(b for _, b in found)


def folder_changes(server: SyncDaemon, since: int) -> tuple[list[dict], int]:
    """Every change of alice's folder after `since`, paging; and the cursor."""
    status, folders = server.request("GET", "/sync/v1/folders", user="alice")
    assert status == 200, folders
    fid = next(f["id"] for f in folders if f["name"] == FOLDER)
    changes = []
    while True:
        status, page = server.request("GET", f"/sync/v1/folders/{fid}/changes?since={since}", user="alice",
                                      timeout=60)
        assert status == 200, page
        changes += page["changes"]
        since = page["cursor"]
        if not page["more"]:
            return changes, since


# -- Syncthing ---------------------------------------------------------------------------

class Syncthing:
    """One Syncthing instance: its home, its REST API, its listening port."""

    def __init__(self, binary: str, name: str, home: Path, folder: Path):
        self.binary, self.name, self.home, self.folder = binary, name, home, folder
        self.gui_port, self.listen_port = free_port(), free_port()
        self.api_key = f"hearth-bench-{name}-{os.urandom(8).hex()}"
        self.daemon: Daemon | None = None
        self.env = {**os.environ, "HOME": str(home), "STNODEFAULTFOLDER": "1", "STNOUPGRADE": "1",
                    "STNORESTART": "1"}
        home.mkdir(parents=True)
        folder.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([binary, "generate", "--home", str(home), "--no-default-folder",
                                 "--skip-port-probing"], env=self.env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"syncthing generate: {result.stderr}"
        result = subprocess.run([binary, "--home", str(home), "--device-id"], env=self.env, capture_output=True,
                                text=True, timeout=60)
        self.device_id = result.stdout.strip().splitlines()[-1]
        self._configure()

    def _configure(self) -> None:
        """Everything that would reach past loopback off, before it first starts."""
        path = self.home / "config.xml"
        tree = ET.parse(path)
        options = tree.getroot().find("options")
        for element in options.findall("listenAddress"):
            options.remove(element)
        ET.SubElement(options, "listenAddress").text = f"tcp://127.0.0.1:{self.listen_port}"
        for key, value in {"globalAnnounceEnabled": "false", "localAnnounceEnabled": "false",
                           "relaysEnabled": "false", "natEnabled": "false", "urAccepted": "-1",
                           "crashReportingEnabled": "false", "autoUpgradeIntervalH": "0",
                           "startBrowser": "false", "setLowPriority": "false"}.items():
            element = options.find(key)
            if element is None:
                element = ET.SubElement(options, key)
            element.text = value
        tree.write(path)

    def start(self, workdir: Path) -> None:
        self.daemon = Daemon(f"syncthing-{self.name}", [
            self.binary, "serve", "--home", str(self.home), "--no-browser", "--no-restart", "--no-upgrade",
            f"--gui-address=127.0.0.1:{self.gui_port}", f"--gui-apikey={self.api_key}"], workdir, self.env)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.daemon.process.poll() is None, f"syncthing {self.name} exited: {self.daemon.tail(20)}"
            try:
                if self.api("GET", "/rest/system/ping").get("ping") == "pong":
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"syncthing {self.name}: REST API not up in {START_TIMEOUT:.0f} s: {self.daemon.tail(20)}")

    def api(self, method: str, path: str, body=None, timeout: float = 30):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"http://127.0.0.1:{self.gui_port}{path}", data=data, method=method,
                                         headers={"X-API-Key": self.api_key, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read()
        return json.loads(text) if text.strip() else None

    def share_with(self, peer: "Syncthing") -> None:
        self.api("POST", "/rest/config/devices", {"deviceID": peer.device_id, "name": peer.name,
                                                  "addresses": [f"tcp://127.0.0.1:{peer.listen_port}"]})
        self.api("POST", "/rest/config/folders", {
            "id": FOLDER, "label": FOLDER, "path": str(self.folder), "type": "sendreceive",
            "devices": [{"deviceID": self.device_id}, {"deviceID": peer.device_id}],
            "fsWatcherEnabled": True, "fsWatcherDelayS": 1, "rescanIntervalS": 3600})

    def status(self) -> dict:
        return self.api("GET", f"/rest/db/status?folder={FOLDER}")

    def connected(self, peer: "Syncthing") -> bool:
        return bool(self.api("GET", "/rest/system/connections")["connections"].get(peer.device_id, {})
                    .get("connected"))

    def bytes_total(self) -> tuple[int, int]:
        total = self.api("GET", "/rest/system/connections")["total"]
        return total["inBytesTotal"], total["outBytesTotal"]

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()


wait = Client.wait_for


def syncthing_synced(a: Syncthing, b: Syncthing, files: int) -> bool:
    """Both report the folder idle, A has scanned `files` files, B needs nothing and holds as many."""
    try:
        sa, sb = a.status(), b.status()
    except (OSError, ValueError):
        return False
    if not (sa["state"] == "idle" and sb["state"] == "idle" and sa["localFiles"] == files
            and sb["localFiles"] == files and sb["globalFiles"] == files and sb["needFiles"] == 0
            and sb["needBytes"] == 0 and sa["needFiles"] == 0):
        return False
    return not tree_difference(a.folder, b.folder, content=False)


def syncthing_phase(a: Syncthing, b: Syncthing, staged: Path, files: int) -> float:
    """Move `staged` into A's folder, have A scan, and wait for B: seconds."""
    began = time.monotonic()
    os.rename(staged, a.folder / staged.name)
    a.api("POST", f"/rest/db/scan?folder={FOLDER}", timeout=PHASE_TIMEOUT)
    wait(lambda: syncthing_synced(a, b, files), PHASE_TIMEOUT, f"Syncthing to sync {files} files", 0.1)
    return time.monotonic() - began


def hearth_phase(a: Client, b: Client, staged: Path) -> float:
    """Move `staged` into A's folder while both clients run, and wait until B holds every
    path A does (a download appears under its name only when complete): seconds."""
    began = time.monotonic()
    os.rename(staged, a.root / staged.name)
    want = set(fingerprint(a.root, content=False))
    wait(lambda: set(fingerprint(b.root, content=False)) == want, PHASE_TIMEOUT,
         f"hearth client B to hold {len(want):,} paths", 0.1)
    return time.monotonic() - began


def rsync_phase(rsync, source: Path, dest: Path) -> float:
    began = time.monotonic()
    subprocess.run([rsync.path, "-a", "--exclude=.hearth*", f"{source}/", f"{dest}/"], check=True,
                   timeout=PHASE_TIMEOUT)
    return time.monotonic() - began


# -- measurements ---------------------------------------------------------------------------

@dataclass
class Row:
    name: str
    small_s: float | None = None
    big_s: float | None = None
    edits: list[float] = field(default_factory=list)
    insert_s: float | None = None
    insert_bytes: int | None = None
    insert_note: str = ""
    rss_mb: float | None = None            # the client (hearth), either instance (Syncthing)
    server_rss_mb: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def full_s(self) -> float | None:
        return self.small_s + self.big_s if self.small_s is not None and self.big_s is not None else None

    @property
    def small_fps(self) -> float | None:
        return SMALL_FILES / self.small_s if self.small_s else None

    @property
    def big_mbps(self) -> float | None:
        return BIG_BYTES / self.big_s / 1e6 if self.big_s else None

    @property
    def edit_p50(self) -> float | None:
        return median(self.edits)


def edit_latency(a_root: Path, b_root: Path, relpath: str) -> float:
    """Overwrite one small file on A in place (same size, new bytes); seconds until B reads the new bytes."""
    target = b_root / relpath
    size = (a_root / relpath).stat().st_size
    data = os.urandom(size)
    with open(a_root / relpath, "r+b") as f:
        f.write(data)
    began = time.monotonic()
    deadline = began + LATENCY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if target.read_bytes() == data:
                return time.monotonic() - began
        except OSError:
            pass
        time.sleep(0.005)
    raise AssertionError(f"{relpath}: the edit on A did not reach B in {LATENCY_TIMEOUT:.0f} s")


def insert_byte(a_path: Path, b_path: Path, offset: int, timeout: float) -> float:
    """One byte inserted into A's file at `offset` (the rest rewritten after it); seconds until B has it."""
    with open(a_path, "rb") as f:
        head, tail = f.read(offset), f.read()
    expected = hashlib.sha256(head + b"\x42" + tail).hexdigest()
    size = len(head) + 1 + len(tail)
    with open(a_path, "r+b") as f:
        f.seek(offset)
        f.write(b"\x42" + tail)
    began = time.monotonic()
    deadline = began + timeout
    while time.monotonic() < deadline:
        try:
            if b_path.stat().st_size == size:
                seen = time.monotonic()
                with open(b_path, "rb") as f:
                    if hashlib.file_digest(f, "sha256").hexdigest() == expected:
                        return seen - began
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"the inserted byte did not reach B in {timeout:.0f} s")


def scale_for_disk(root: Path, small_bytes: int) -> tuple[int, str]:
    """BIG_BYTES, or less if the disk cannot hold six copies of the data set and a spare big file."""
    free = shutil.disk_usage(root).free
    copies = 6  # hearth A, server, B; Syncthing A, B; rsync's copy
    need = copies * (BIG_BYTES + small_bytes) + BIG_BYTES
    if need <= 0.8 * free:
        return BIG_BYTES, ""
    big = max(8 * MIB, int((0.8 * free - copies * small_bytes) / (copies + 1)) // MIB * MIB)
    return big, (f"the disk has {free / 1e9:.1f} GB free, not the {need / 0.8 / 1e9:.1f} GB the {BIG_BYTES // MIB} "
                 f"MiB file needs: big file scaled down to {big // MIB} MiB")


# -- the report -----------------------------------------------------------------------------

def report(rows: list[Row], many: dict, tools: list, machine: MachineLoad, seconds: float, notes: list[str]) -> str:
    found = ", ".join(f"{t.name} {t.version}" if t.path else f"{t.name} SKIPPED ({t.reason})" for t in tools)
    offset_mib = insert_offset() / MIB
    head = (f"== file sync on loopback, {seconds:.0f} s: {os.cpu_count()} CPUs, Linux {os.uname().release}, "
            f"Python {sys.version.split()[0]}, HEARTH_BENCH_SCALE={SCALE:g}\n   {found}\n"
            f"   data: {SMALL_FILES:,} small files (16-24 KiB, random, depth <= 5, some non-ASCII names), then one "
            f"{BIG_BYTES / MIB:g} MiB random file; edits: {EDITS} one-file overwrites; insert: 1 byte at "
            f"{offset_mib:g} MiB\n"
            "   hearth: server + long-running clients A and B (data moved into A at once); "
            "Syncthing: two instances, watcher delay 1 s; rsync -a A/ dest/\n"
            f"   machine: {machine.describe()}\n"
            "   checks: after every phase B's tree = A's (paths, bytes, mtime, exec bit) for every system"
            + "".join(f"\n   NOTE: {n}" for n in notes))
    header = ["", "small s", "files/s", "big s", "big MB/s", "full sync s", "edit p50 s", "insert s",
              "insert bytes", "peak RSS MB", "server RSS MB", "notes"]
    body = []
    for row in rows:
        body.append([row.name, fmt(row.small_s, ".2f"), fmt(row.small_fps, ",.0f"), fmt(row.big_s, ".2f"),
                     fmt(row.big_mbps, ",.0f"), fmt(row.full_s, ".2f"), fmt(row.edit_p50, ".3f"),
                     fmt(row.insert_s, ".2f"), fmt(row.insert_bytes, ",d") if row.insert_bytes is not None else "—",
                     fmt(row.rss_mb, ".0f"), fmt(row.server_rss_mb, ".0f"),
                     "; ".join(([row.insert_note] if row.insert_note else []) + row.notes)])
    results = format_table("results (MB = 10^6 bytes; edit p50: median of "
                           f"{EDITS}; peak RSS: during the full sync)", header, body)
    by = {row.name: row for row in rows}
    metrics = [("small s", lambda r: r.small_s), ("files/s", lambda r: r.small_fps), ("big s", lambda r: r.big_s),
               ("full sync s", lambda r: r.full_s), ("edit p50", lambda r: r.edit_p50),
               ("insert s", lambda r: r.insert_s), ("insert bytes", lambda r: r.insert_bytes),
               ("peak RSS", lambda r: r.rss_mb)]
    ratio_rows = []
    for other in ("hearth-s3", "syncthing", "rsync"):
        if other in by:
            mine, theirs = (by[other], by["hearth"]) if other == "hearth-s3" else (by["hearth"], by[other])
            ratio_rows.append([f"{mine.name} / {theirs.name}"] + [fmt(ratio(get(mine), get(theirs)), ".2f", "x")
                                                                  for _, get in metrics] + [""])
    ratios = format_table("ratios (times, bytes, RSS above 1x: the first costs more; files/s above 1x: the first "
                          "faster)", ["", *(name for name, _ in metrics), ""], ratio_rows)
    hearth, syncthing = by["hearth"], by.get("syncthing")

    def judged(ok: bool | None) -> str:
        return "no number" if ok is None else ("met" if ok else "MISSED")

    full_vs = ratio(hearth.full_s, syncthing.full_s) if syncthing else None
    s3 = by.get("hearth-s3")
    s3_vs = ratio(s3.full_s, hearth.full_s) if s3 else None
    targets = [
        f"full sync with chunks in S3 within {GOAL_S3_VS_LOCAL:g}x of local: {fmt(s3.full_s if s3 else None, '.2f', ' s')}"
        f" vs {fmt(hearth.full_s, '.2f', ' s')} ({fmt(s3_vs, '.2f', 'x')}) — "
        f"{judged(None if s3_vs is None else s3_vs <= GOAL_S3_VS_LOCAL)}",
        f"full sync faster than Syncthing: hearth {fmt(hearth.full_s, '.2f', ' s')} vs "
        f"{fmt(syncthing.full_s if syncthing else None, '.2f', ' s')} ({fmt(full_vs, '.2f', 'x')}) — "
        f"{judged(None if full_vs is None else full_vs < 1)}",
        f"small-edit p50 < {GOAL_EDIT_P50:g} s: {fmt(hearth.edit_p50, '.3f', ' s')} — "
        f"{judged(None if hearth.edit_p50 is None else hearth.edit_p50 < GOAL_EDIT_P50)}",
        f"small files >= {GOAL_SMALL_FPS:,} files/s: {fmt(hearth.small_fps, ',.0f')} files/s A→server→B, "
        "both clients running — "
        f"{judged(None if hearth.small_fps is None else hearth.small_fps >= GOAL_SMALL_FPS)}",
        f"client RSS <= {GOAL_MANY_RSS_MB} MB at 100k files: {fmt(many.get('rss_mb'), '.0f', ' MB')} at "
        f"{many.get('files', 0):,} files (peak {fmt(many.get('peak_mb'), '.0f', ' MB')} during its --once of "
        f"{fmt(many.get('once_s'), '.1f', ' s')}) — "
        f"{judged(None if many.get('rss_mb') is None else many['rss_mb'] <= GOAL_MANY_RSS_MB)}"
        + ("" if many.get("files") == 100_000 else f" (NOT at 100k: {many.get('why', '')})"),
    ]
    return "\n" + "\n\n".join([head, results, ratios, "targets (printed, not asserted):\n  "
                                + "\n  ".join(targets)]) + "\n"


def insert_offset() -> int:
    return min(100 * MIB, BIG_BYTES // 5)


# -- the benchmark --------------------------------------------------------------------------

def test_sync_bench(tmp_path: Path, syncthing, rsync, seaweed) -> None:
    global BIG_BYTES
    began, machine = time.monotonic(), MachineLoad()
    notes: list[str] = []
    BIG_BYTES, disk_note = scale_for_disk(tmp_path, SMALL_FILES * 20 * KIB)
    if disk_note:
        notes.append(disk_note)
        print(f"\nbench: {disk_note}", flush=True)
    for tool in (syncthing, rsync):
        if tool.path is None:
            notes.append(f"{tool.name} row skipped: {tool.reason}")
            print(f"\nbench: {tool.name} row skipped: {tool.reason}", flush=True)

    hearth_row = Row("hearth")
    rows = [hearth_row]
    s3_row = Row("hearth-s3", notes=[f"chunks in SeaweedFS {seaweed.version()} on loopback; initial sync only"])
    st_row = Row("syncthing") if syncthing.path else None
    rs_row = Row("rsync") if rsync.path else None
    rows += [r for r in (s3_row, st_row, rs_row) if r]
    s3_stage = tmp_path / "hearth-s3" / "stage"
    s3_stage.mkdir(parents=True)

    data_dirs: list[Path] = []
    logs = tmp_path / "logs"
    logs.mkdir()
    rss = RssSampler()
    (tmp_path / "server").mkdir()
    server = SyncDaemon(tmp_path / "server")
    data_dirs += [tmp_path / "server" / "var", tmp_path / "hearth", tmp_path / "syncthing", tmp_path / "rsync",
                  tmp_path / "many", tmp_path / "hearth-s3"]
    server.add_user("alice")
    server.start()
    rss.watch("server", server.process.pid)
    a = Client(server, tmp_path / "hearth" / "A", device="A", folder=FOLDER)
    b = Client(server, tmp_path / "hearth" / "B", device="B", folder=FOLDER)
    st_a = st_b = None
    many: dict = {}
    try:
        if st_row:
            st_a = Syncthing(syncthing.path, "A", tmp_path / "syncthing" / "homeA", tmp_path / "syncthing" / "A")
            st_b = Syncthing(syncthing.path, "B", tmp_path / "syncthing" / "homeB", tmp_path / "syncthing" / "B")
            st_a.start(logs)
            st_b.start(logs)
            st_a.share_with(st_b)
            st_b.share_with(st_a)
            wait(lambda: st_a.connected(st_b) and st_b.connected(st_a), START_TIMEOUT,
                 "the Syncthing instances to connect")
            wait(lambda: syncthing_synced(st_a, st_b, 0), START_TIMEOUT, "Syncthing's empty folder to be idle")
        stage = tmp_path / "syncthing" / "stage"
        stage.mkdir(parents=True, exist_ok=True)
        dest = tmp_path / "rsync" / "dest"
        dest.mkdir(parents=True)

        # Phase 1: the small files, both hearth clients running (as Syncthing runs), data moved in at once.
        hearth_start(a, START_TIMEOUT)
        hearth_start(b, START_TIMEOUT)
        rss.watch("client-A", a.process.pid)
        rss.watch("client-B", b.process.pid)
        print(f"\nbench: writing {SMALL_FILES:,} small files", flush=True)
        hearth_stage = tmp_path / "hearth" / "stage"
        paths = write_small_files(hearth_stage, SMALL_FILES)
        subprocess.run(["cp", "-a", str(hearth_stage / "small"), str(s3_stage / "small")], check=True, timeout=600)
        if st_row:
            subprocess.run(["cp", "-a", str(hearth_stage / "small"), str(stage / "small")], check=True, timeout=600)
        print("bench: phase 1 (small files): hearth", flush=True)
        hearth_row.small_s = hearth_phase(a, b, hearth_stage / "small")
        assert_same("hearth", "small files", a.root, b.root)
        if st_row:
            print("bench: phase 1 (small files): Syncthing", flush=True)
            rss.watch("st-A", st_a.daemon.pid)
            rss.watch("st-B", st_b.daemon.pid)
            st_row.small_s = syncthing_phase(st_a, st_b, stage / "small", SMALL_FILES)
            assert_same("syncthing", "small files", st_a.folder, st_b.folder)
        if rs_row:
            print("bench: phase 1 (small files): rsync", flush=True)
            rs_row.small_s = rsync_phase(rsync, a.root, dest)
            assert_same("rsync", "small files", a.root, dest)

        # Phase 2: the big file.
        print(f"bench: writing the {BIG_BYTES // MIB} MiB file", flush=True)
        write_big_file(hearth_stage / "big.bin", BIG_BYTES)
        subprocess.run(["cp", "-a", str(hearth_stage / "big.bin"), str(s3_stage / "big.bin")], check=True,
                       timeout=600)
        if st_row:
            subprocess.run(["cp", "-a", str(hearth_stage / "big.bin"), str(stage / "big.bin")], check=True,
                           timeout=600)
        print("bench: phase 2 (big file): hearth", flush=True)
        hearth_row.big_s = hearth_phase(a, b, hearth_stage / "big.bin")
        assert_same("hearth", "big file", a.root, b.root)
        if st_row:
            print("bench: phase 2 (big file): Syncthing", flush=True)
            st_row.big_s = syncthing_phase(st_a, st_b, stage / "big.bin", SMALL_FILES + 1)
            assert_same("syncthing", "big file", st_a.folder, st_b.folder)
            rss.unwatch("st-A")
            rss.unwatch("st-B")
            st_row.rss_mb = rss.peak_mb("st-A", "st-B")
        if rs_row:
            print("bench: phase 2 (big file): rsync", flush=True)
            rs_row.big_s = rsync_phase(rsync, a.root, dest)
            assert_same("rsync", "big file", a.root, dest)
            shutil.rmtree(dest)
        rss.unwatch("client-A")
        rss.unwatch("client-B")
        hearth_row.rss_mb = rss.peak_mb("client-A", "client-B")
        hearth_row.server_rss_mb = rss.peak_mb("server")
        rss.unwatch("server")

        # Phase 3: edit latency, long-running on both sides.
        print("bench: phase 3 (edit latency)", flush=True)
        for i in range(EDITS):
            relpath = paths[(i * 97 + 13) % len(paths)]
            hearth_row.edits.append(edit_latency(a.root, b.root, relpath))
            if st_row:
                st_row.edits.append(edit_latency(st_a.folder, st_b.folder, relpath))
        # B has the bytes as soon as they land; the clients' own bookkeeping may still be finishing.
        wait(lambda: client_status(a.root).get("state") == "in sync" and
             client_status(b.root).get("state") == "in sync", LATENCY_TIMEOUT, "the hearth clients to settle")
        assert_same("hearth", "edits", a.root, b.root)
        if st_row:
            wait(lambda: syncthing_synced(st_a, st_b, SMALL_FILES + 1), LATENCY_TIMEOUT, "Syncthing to settle")
            assert_same("syncthing", "edits", st_a.folder, st_b.folder)

        # Phase 4: one byte inserted into the big file.
        print("bench: phase 4 (1-byte insert)", flush=True)
        before, cursor = folder_changes(server, 0)
        old_chunks = {cid for change in before if change["path"] == "big.bin" for cid, _ in change["chunks"]}
        a_log, b_log = a.log_path.stat().st_size, b.log_path.stat().st_size
        hearth_row.insert_s = insert_byte(a.root / "big.bin", b.root / "big.bin", insert_offset(), PHASE_TIMEOUT)
        wait(lambda: client_status(a.root).get("state") == "in sync" and
             client_status(b.root).get("state") == "in sync", LATENCY_TIMEOUT, "the hearth clients to settle")
        after, _ = folder_changes(server, cursor)
        revision = [c for c in after if c["path"] == "big.bin"]
        assert revision, f"no new revision of big.bin on the server: {after}"
        new_bytes = sum(n for cid, n in revision[-1]["chunks"] if cid not in old_chunks)
        with open(a.log_path, errors="replace") as f:
            f.seek(a_log)
            chunks_sent, bytes_sent = sent_bytes(f.read())
        with open(b.log_path, errors="replace") as f:
            f.seek(b_log)
            fetched = sum(int(n) for n in FETCHED.findall(f.read()))
        hearth_row.insert_bytes = bytes_sent + new_bytes
        hearth_row.insert_note = (f"insert: A sent {bytes_sent:,} B in {chunks_sent} chunk(s), B fetched "
                                  f"{fetched} chunk(s) = {new_bytes:,} B (chunk payload)")
        assert_same("hearth", "insert", a.root, b.root)
        if st_row:
            in_b0, out_b0 = st_b.bytes_total()
            in_a0, out_a0 = st_a.bytes_total()
            st_row.insert_s = insert_byte(st_a.folder / "big.bin", st_b.folder / "big.bin", insert_offset(),
                                          PHASE_TIMEOUT)
            wait(lambda: syncthing_synced(st_a, st_b, SMALL_FILES + 1), LATENCY_TIMEOUT, "Syncthing to settle")
            in_b1, out_b1 = st_b.bytes_total()
            in_a1, out_a1 = st_a.bytes_total()
            st_row.insert_bytes = (in_b1 - in_b0) + (in_a1 - in_a0)
            st_row.insert_note = (f"insert: B received {in_b1 - in_b0:,} B, A received {in_a1 - in_a0:,} B "
                                  "(TLS connection counters)")
            assert_same("syncthing", "insert", st_a.folder, st_b.folder)
        hearth_stop(a)
        hearth_stop(b)
        if st_a:
            st_a.stop()
            st_b.stop()

        # Phases 1 and 2 again, the server's chunks in S3: the initial sync the issue compares.
        print("bench: phases 1 and 2 with chunks in S3: hearth-s3", flush=True)
        s3_initial_sync(s3_row, seaweed, tmp_path / "hearth-s3", s3_stage, logs)

        # Phase 5: a client tracking many tiny files.
        many = measure_many(server, tmp_path / "many", rss)
    finally:
        rss.stop()
        for client in (a, b):
            try:
                hearth_stop(client)
            except Exception as error:  # noqa: BLE001 - cleanup goes on
                print(f"bench: stopping hearth client {client.device}: {error}")
        for instance in (st_a, st_b):
            if instance is not None:
                instance.stop()
        code = server.stop()
        for path in (a.log_path, b.log_path, tmp_path / "many" / "M.client.log", server.home / "sync.stderr"):
            if path.exists():
                shutil.copy(path, logs / path.name)
        for path in data_dirs:
            shutil.rmtree(path, ignore_errors=True)
        print(f"bench: logs in {logs}", flush=True)
    tools = [syncthing, rsync]
    print(report(rows, many, tools, machine, time.monotonic() - began, notes))
    assert code == 0, f"the sync server exited {code}:\n{server.log()[-3000:]}"


def s3_initial_sync(row: Row, seaweed, workdir: Path, staged: Path, logs: Path) -> None:
    """Phases 1 and 2 on a server of its own whose chunks are in a SeaweedFS bucket: its clients A and B
    running, the same small files and then the same big file moved into A, timed until B holds them."""
    (workdir / "server").mkdir()
    server = SyncDaemon(workdir / "server", "\n" + seaweed.storage_toml(seaweed.create_bucket(), "bench"))
    server.env.update(seaweed.environ())
    server.add_user("alice")
    server.start()
    a = Client(server, workdir / "A", device="A", folder=FOLDER)
    b = Client(server, workdir / "B", device="B", folder=FOLDER)
    try:
        hearth_start(a, START_TIMEOUT)
        hearth_start(b, START_TIMEOUT)
        row.small_s = hearth_phase(a, b, staged / "small")
        assert_same("hearth-s3", "small files", a.root, b.root)
        row.big_s = hearth_phase(a, b, staged / "big.bin")
        assert_same("hearth-s3", "big file", a.root, b.root)
    finally:
        for client in (a, b):
            hearth_stop(client)
            if client.log_path.exists():
                shutil.copy(client.log_path, logs / f"s3-{client.log_path.name}")
        code = server.stop()
        shutil.copy(server.log_path, logs / "s3-sync.stderr")
    assert code == 0, f"the S3 sync server exited {code}:\n{server.log()[-3000:]}"


def measure_many(server: SyncDaemon, root: Path, rss: RssSampler) -> dict:
    """A client of its own folder of tiny files: --once, then the long-running client's RSS after a cycle."""
    files = MANY_FILES
    why = f"HEARTH_BENCH_SCALE={SCALE:g}" if MANY_FILES != 100_000 else ""
    print(f"bench: phase 5 (client RSS at {files:,} tiny files)", flush=True)
    client = Client(server, root / "M", device="M", folder="many")
    t = time.monotonic()
    for i in range(files):
        directory = client.root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            directory.mkdir()
        (directory / f"t{i:06d}").write_bytes(b"%d\n" % i)
    created = time.monotonic() - t
    once_s, _ = hearth_once(client, rss, "many", PHASE_TIMEOUT)
    hearth_start(client, START_TIMEOUT * 2)
    try:
        time.sleep(1)
        rss_mb = rss.rss(client.process.pid) / 1e6
    finally:
        hearth_stop(client)
    return {"files": files, "why": why, "rss_mb": rss_mb, "peak_mb": rss.peak_mb("many"), "once_s": once_s,
            "created_s": created}
