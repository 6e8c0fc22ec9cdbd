"""hearth's WebDAV files daemon next to wsgidav and nginx's DAV modules: one run, one data set, rclone as the client.

Each server runs in its own process on a free loopback port with its own storage,
and is measured alone, one after the other, with HTTP Basic as alice:

* hearth: `python -m services.files` as tests/test_files_webdav.py starts it
  (argon2 password with the login cache, SQLite WAL, content-defined chunks),
  serving /files/alice/bench/, a folder made by MKCOL.
* hearth-s3: the same daemon with its chunks in a bucket of a real SeaweedFS
  (tests/seaweed.py, `weed server -s3` on loopback) rather than var/blobs,
  measured right after hearth: the goal is the rclone copies within 1.5x of
  local disk. On a small machine SeaweedFS shares the CPUs with everything else.
* wsgidav (PyPI, the `bench` extra): its filesystem provider on a plain
  directory, its simple domain controller with alice's password, Basic only,
  on its default server (cheroot), logging at verbosity 1.
* nginx (Debian) with its dav module and the dav-ext module (Debian package
  libnginx-mod-http-dav-ext, apt-installed when missing and we are root) for
  PROPFIND: a plain directory, auth_basic with a {PLAIN} password file, one
  worker, no access log. Skipped with the reason printed when not installable.

What is measured, per server (scaled by HEARTH_BENCH_SCALE, default 1):

* rclone copy up, then back into an empty directory, of a tree of 1,000 files
  of 4 KiB random bytes (10 directories), in files/s; then of one 300 MiB
  random file, in MB/s. rclone runs with its defaults (4 transfers, 8 checkers)
  as the `webdav` backend, vendor=other. Every copy that came back is compared
  with what went up, byte for byte.
* PROPFIND Depth 1 on a directory of 10,000 files: the median of 5, each on a
  kept-alive connection, asking for the properties rclone asks for. The
  directory is loaded each server's fastest way: hearth through its journal
  and chunk store (one transaction), wsgidav and nginx by writing the files
  into their directory. The answer must list every file.
* GET of a 4 KiB file: the p50 of 200 sequential requests on one kept-alive
  connection, each body compared with the file sent.

For the big file, the CPU seconds each server's processes (hearth's daemon and,
for hearth-s3, SeaweedFS) and rclone spent on the copy are printed beside the
speed, with the share of the machine's CPU time left idle meanwhile: when none
was, the copy was bound by CPU, its speed followed the CPU left over by other
work, and the CPU a copy costs is what decides how much it loses.

Timings are printed with the goals (PROPFIND Depth 1 of 10,000 entries under
200 ms; at least wsgidav's speed everywhere), never asserted. Correctness is
asserted for hearth (every copy byte for byte, every listing complete, every
GET right) and printed for the others.
"""
from __future__ import annotations

import base64
import http.client
import importlib.metadata
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import unquote

import pytest

from services.core.db import open_db, write
from services.core.blobs import open_blob_store
from services.core.config import load_config
from services.core.tree import chunk_id, commit_file, mkdir
from tests.bench.conftest import _apt_install_no_services
from tests.bench.tables import fmt, format_table, median
from tests.bench.test_front_throughput import CLOCK_TICKS, Daemon, MachineLoad, free_port, tree_cpu_seconds
from tests.daemons import PASSWORDS
from tests.test_files_webdav import FilesDaemon

KIB, MIB = 1024, 1024 * 1024
SCALE = float(os.environ.get("HEARTH_BENCH_SCALE", "1"))
SMALL_FILES = max(50, round(1_000 * SCALE))
SMALL_DIRS = 10
SMALL_BYTES = 4 * KIB
BIG_BYTES = max(8 * MIB, round(300 * MIB * SCALE) // MIB * MIB)
LISTED = max(500, round(10_000 * SCALE))
REPEATS = 5
GETS = 200
USER = "alice"
RCLONE_TIMEOUT = 900
START_TIMEOUT = 60.0
RCLONE_PACER_MS = 10  # minSleep of rclone's backend/webdav pacer
DAV_EXT_MODULE = Path("/usr/lib/nginx/modules/ngx_http_dav_ext_module.so")
# What rclone's webdav backend asks for when it lists a directory.
PROPFIND_BODY = (b'<?xml version="1.0"?><d:propfind xmlns:d="DAV:"><d:prop><d:displayname/><d:getlastmodified/>'
                 b'<d:getcontentlength/><d:resourcetype/><d:getcontenttype/></d:prop></d:propfind>')

GOAL_PROPFIND_MS, GOAL_VS_WSGIDAV = 200.0, 1.0
GOAL_S3_VS_LOCAL = 1 / 1.5  # chunks in S3 on loopback: at least 1/1.5 of local disk's speed (within 1.5x)

pytestmark = pytest.mark.timeout(1800)


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    rate: bool  # higher is better (files/s, MB/s); otherwise ms, lower is better


METRICS = [
    Metric("small_up", f"rclone copy up, {SMALL_FILES:,} x 4 KiB (files/s)", True),
    Metric("small_down", f"rclone copy back, {SMALL_FILES:,} x 4 KiB (files/s)", True),
    Metric("big_up", f"rclone copy up, 1 x {BIG_BYTES // MIB} MiB (MB/s)", True),
    Metric("big_down", f"rclone copy back, 1 x {BIG_BYTES // MIB} MiB (MB/s)", True),
    Metric("propfind", f"PROPFIND depth 1, {LISTED:,} entries (ms)", False),
    Metric("get_p50", "GET 4 KiB p50 (ms)", False),
]


@dataclass
class Server:
    """A running WebDAV server: where alice's bench directory is, and how to fill and stop it."""

    name: str
    version: str
    port: int
    root: str                               # URL path of alice's tree, with its trailing slash
    fill: Callable[[str, dict[str, bytes]], str]   # (directory under bench/, files) -> how it was done
    stop: Callable[[], int | None]
    notes: list[str] = field(default_factory=list)
    processes: dict[str, int] = field(default_factory=dict)  # whose CPU the big-file copies report: name -> pid


@dataclass
class Result:
    name: str
    version: str
    values: dict[str, float | None] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> CPU seconds by process
    idle: dict[str, float] = field(default_factory=dict)  # metric -> share of the machine's CPU time left idle


# -- the servers ------------------------------------------------------------------------------

def start_hearth(workdir: Path, seaweed=None) -> Server:
    """hearth's files daemon, its chunks in var/blobs, or with `seaweed` in a bucket of that S3 gateway."""
    name = "hearth" if seaweed is None else "hearth-s3"
    home = workdir / name
    home.mkdir()
    storage = "" if seaweed is None else "\n" + seaweed.storage_toml(seaweed.create_bucket(), "bench")
    daemon = FilesDaemon(home, storage, quota_mb=0)
    if seaweed is not None:
        daemon.env.update(seaweed.environ())
    daemon.add_user(USER)
    daemon.start()
    status = daemon.exchange("MKCOL", f"/files/{USER}/bench/", user=USER)[0]
    assert status == 201, f"MKCOL of the bench folder answered {status}"

    def fill(directory: str, files: dict[str, bytes]) -> str:
        """Straight into the journal and the chunk store, as one transaction (what a sync commit does)."""
        db = open_db(home / "var" / "db" / "hearth.sqlite3")
        store = open_blob_store(load_config(daemon.config), daemon.env)
        try:
            folder = db.execute("SELECT id FROM folders WHERE owner = ? AND name = 'bench'", [USER]).fetchone()[0]
            chunks = {name: chunk_id(data) for name, data in files.items()}
            store.publish([store.stage(chunks[name], data) for name, data in files.items()])

            def commit(db) -> None:
                mkdir(db, folder, directory, "bench")
                for name, data in files.items():
                    commit_file(db, folder, f"{directory}/{name}", None, [(chunks[name], len(data))], len(data),
                                time.time_ns(), False, "bench")
            write(db, commit)
        finally:
            db.close()
            store.close()
        return "the journal and chunk store API, one transaction"

    where = "chunks in var/blobs" if seaweed is None else f"chunks in SeaweedFS {seaweed.version()} on loopback"
    processes = {"files daemon": daemon.process.pid, **({} if seaweed is None else {"SeaweedFS": seaweed.process.pid})}
    return Server(name, importlib.metadata.version("hearth"), daemon.port, f"/files/{USER}/", fill,
                  daemon.stop, [f"HTTP Basic (argon2 password, login cache), SQLite WAL, FastCDC chunks, {where}"],
                  processes)


def _filler(root: Path) -> Callable[[str, dict[str, bytes]], str]:
    def fill(directory: str, files: dict[str, bytes]) -> str:
        target = root / "bench" / directory
        target.mkdir(parents=True)
        for name, data in files.items():
            (target / name).write_bytes(data)
        return "files written into its directory"
    return fill


def start_wsgidav(workdir: Path) -> Server:
    home = workdir / "wsgidav"
    (home / "root" / "bench").mkdir(parents=True)
    port = free_port()
    config = {"host": "127.0.0.1", "port": port, "provider_mapping": {"/": str(home / "root")},
              "http_authenticator": {"domain_controller": None, "accept_basic": True, "accept_digest": False,
                                     "default_to_digest": False},
              "simple_dc": {"user_mapping": {"*": {USER: {"password": PASSWORDS[USER]}}}},
              "verbose": 1, "dir_browser": {"enable": False}}
    (home / "wsgidav.json").write_text(json.dumps(config, indent=1))
    program = Path(sys.executable).parent / "wsgidav"
    daemon = Daemon("wsgidav", [str(program), "--config", str(home / "wsgidav.json")], home)
    daemon.wait_answering(port, START_TIMEOUT)
    return Server("wsgidav", importlib.metadata.version("wsgidav"), port, "/", _filler(home / "root"),
                  lambda: _stop(daemon),
                  ["filesystem provider, simple domain controller (Basic only), cheroot, verbosity 1"],
                  {"wsgidav": daemon.pid})


def start_nginx(workdir: Path, path: str) -> Server:
    home = workdir / "nginx"
    (home / "root" / "bench").mkdir(parents=True)
    (home / "users").write_text(f"{USER}:{{PLAIN}}{PASSWORDS[USER]}\n")
    port = free_port()
    daemon = run_nginx(home, path, port, textwrap.dedent(f"""\
        server {{
            listen 127.0.0.1:{port};
            location / {{
                root {home / "root"};
                auth_basic "bench";
                auth_basic_user_file {home / "users"};
                dav_methods PUT DELETE MKCOL COPY MOVE;
                dav_ext_methods PROPFIND OPTIONS;
                create_full_put_path on;
            }}
        }}
        """))
    return Server("nginx", nginx_version(path), port, "/", _filler(home / "root"), lambda: _stop(daemon),
                  ["dav + dav-ext modules, 1 worker, no access log, auth_basic"], {"nginx": daemon.pid})


def run_nginx(home: Path, path: str, port: int, http: str) -> Daemon:
    """nginx from `home` with the dav-ext module, one worker, no access log, no body size limit and `http`
    (its server block) in the http block; returned once it answers on `port`."""
    (home / "temp").mkdir(exist_ok=True)
    as_root = "user root;\n" if os.geteuid() == 0 else ""  # its worker then writes into our 0700 directories
    (home / "nginx.conf").write_text(f"load_module {DAV_EXT_MODULE};\n" + as_root + textwrap.dedent(f"""\
        worker_processes 1;
        pid {home / "nginx.pid"};
        error_log {home / "error.log"} warn;
        events {{ worker_connections 1024; }}
        http {{
            access_log off;
            client_body_temp_path {home / "temp"};
            client_max_body_size 0;
            keepalive_requests 1000000;
        """) + textwrap.indent(http, "    ") + "}\n")
    daemon = Daemon("nginx", [path, "-e", str(home / "error.log"), "-p", str(home), "-c", str(home / "nginx.conf"),
                              "-g", "daemon off;"], home)
    daemon.wait_answering(port, START_TIMEOUT)
    return daemon


def nginx_version(path: str) -> str:
    return _output([path, "-v"]).strip().split("/")[-1]


def nginx_with_dav(nginx) -> tuple[str | None, str]:
    """(nginx's path, '') when it can serve PROPFIND, else (None, why not); the dav-ext module is
    apt-installed when missing and we are root."""
    if nginx.path is None:
        return None, nginx.reason
    if not DAV_EXT_MODULE.exists():
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            return None, "nginx's dav-ext module is not installed (apt-get install libnginx-mod-http-dav-ext)"
        failure = _apt_install_no_services("libnginx-mod-http-dav-ext")
        if not DAV_EXT_MODULE.exists():
            return None, failure or f"libnginx-mod-http-dav-ext installed no {DAV_EXT_MODULE}"
    if "--with-http_dav_module" not in _output([nginx.path, "-V"]):
        return None, f"{nginx.path} was built without the dav module"
    return nginx.path, ""


def _output(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return result.stdout + result.stderr


def _stop(daemon: Daemon) -> int | None:
    daemon.stop()
    return daemon.process.returncode


# -- the data ---------------------------------------------------------------------------------

def make_data(root: Path) -> tuple[Path, Path]:
    """The small-file tree and the big file's directory, of random bytes."""
    rng = random.Random(6)
    small, big = root / "small", root / "big"
    for i in range(SMALL_FILES):
        path = small / f"d{i % SMALL_DIRS:02d}" / f"f{i:05d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(SMALL_BYTES))
    big.mkdir()
    with open(big / "big.bin", "wb") as out:
        for _ in range(BIG_BYTES // MIB):
            out.write(os.urandom(MIB))
    return small, big


def listing_files() -> dict[str, bytes]:
    return {f"entry{i:05d}.txt": f"entry {i}\n".encode() for i in range(LISTED)}


def differences(sent: Path, received: Path) -> list[str]:
    """Relative paths that did not come back byte for byte (missing, different or unexpected)."""
    wrong = []
    for path in sorted(p for p in sent.rglob("*") if p.is_file()):
        copy = received / path.relative_to(sent)
        if not copy.is_file() or not _same_bytes(path, copy):
            wrong.append(str(path.relative_to(sent)))
    extra = {p.relative_to(received) for p in received.rglob("*") if p.is_file()} - \
            {p.relative_to(sent) for p in sent.rglob("*") if p.is_file()}
    return wrong + [f"unexpected {p}" for p in sorted(extra)]


def _same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as one, open(b, "rb") as other:
        while True:
            x, y = one.read(MIB), other.read(MIB)
            if x != y:
                return False
            if not x:
                return True


# -- measuring --------------------------------------------------------------------------------

class Run:
    """One server measured: each step fills in a metric or, on a wrong answer, a problem and a blank."""

    def __init__(self, server: Server, workdir: Path, small: Path, big: Path):
        self.server, self.workdir, self.small, self.big = server, workdir, small, big
        self.result = Result(server.name, server.version, notes=list(server.notes))
        obscured = subprocess.run(["rclone", "obscure", PASSWORDS[USER]], capture_output=True, text=True,
                                  check=True).stdout.strip()
        self.remote = (f":webdav,url='http://127.0.0.1:{server.port}{server.root}',vendor=other,user={USER},"
                       f"pass='{obscured}':bench")
        self.auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORDS[USER]}".encode()).decode()

    def step(self, key: str, measure: Callable[[], float]) -> None:
        try:
            self.result.values[key] = measure()
        except AssertionError as error:
            self.result.values[key] = None
            self.result.problems.append(f"{key}: {error}")

    def costed(self, key: str, measure: Callable[[], float]) -> None:
        """step(), with the CPU seconds the server's processes and rclone spent on it in the notes: on a
        shared machine the CPU a copy costs says more than its speed, which follows whatever else runs."""
        before, idle_before, began = self.cpu_seconds(), idle_cpu_seconds(), time.perf_counter()
        self.step(key, measure)
        idle = (idle_cpu_seconds() - idle_before) / (time.perf_counter() - began) / (os.cpu_count() or 1)
        spent = self.result.cpu[key] = {name: after - before[name] for name, after in self.cpu_seconds().items()}
        self.result.idle[key] = idle
        self.result.notes.append(f"{key}: CPU seconds: " + ", ".join(f"{name} {s:.2f}" for name, s in spent.items())
                                 + f"; the machine's CPUs idle {idle:.0%} of the time")

    def cpu_seconds(self) -> dict[str, float]:
        clients = resource.getrusage(resource.RUSAGE_CHILDREN)  # rclone, once it was waited for
        return {**{name: tree_cpu_seconds(pid) for name, pid in self.server.processes.items()},
                "rclone": clients.ru_utime + clients.ru_stime}

    def all(self) -> Result:
        down = self.workdir / f"{self.server.name}-down"
        self.step("small_up", lambda: SMALL_FILES / self.rclone(self.small, f"{self.remote}/small"))
        self.costed("big_up", lambda: BIG_BYTES / MIB / self.rclone(self.big, f"{self.remote}/big"))
        self.step("small_down", lambda: SMALL_FILES / self.rclone(f"{self.remote}/small", down / "small",
                                                                  verify=self.small))
        self.costed("big_down", lambda: BIG_BYTES / MIB / self.rclone(f"{self.remote}/big", down / "big",
                                                                      verify=self.big))
        shutil.rmtree(down, ignore_errors=True)
        files = listing_files()
        began = time.perf_counter()
        how = self.server.fill("listing", files)
        self.result.notes.append(f"loaded {len(files):,} entries by {how} in {time.perf_counter() - began:.1f} s")
        self.step("propfind", lambda: self.propfind("listing/", set(files)))
        self.step("get_p50", self.get_p50)
        return self.result

    def rclone(self, source, destination, verify: Path | None = None) -> float:
        """Seconds one `rclone copy` took; with `verify`, the copy must equal that directory byte for byte."""
        argv = ["rclone", "--config", "/dev/null", "copy", str(source), str(destination)]
        began = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=RCLONE_TIMEOUT)
        seconds = time.perf_counter() - began
        assert result.returncode == 0, f"rclone copy exited {result.returncode}: {result.stderr.strip()[-500:]}"
        if verify is not None:
            wrong = differences(verify, Path(destination))
            assert not wrong, f"{len(wrong)} files did not come back byte for byte, e.g. {wrong[:3]}"
        return seconds

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=120)

    def request(self, connection, method: str, path: str, body: bytes | None = None,
                headers: dict | None = None) -> tuple[int, bytes]:
        connection.request(method, path, body=body, headers={"Authorization": self.auth, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.read()

    def propfind(self, directory: str, names: set[str]) -> float:
        path = f"{self.server.root}bench/{directory}"
        connection, timings = self.connection(), []
        try:
            for _ in range(REPEATS):
                began = time.perf_counter()
                status, body = self.request(connection, "PROPFIND", path, PROPFIND_BODY,
                                            {"Depth": "1", "Content-Type": "application/xml"})
                timings.append((time.perf_counter() - began) * 1000)
                assert status == 207, f"PROPFIND answered {status}: {body[:300]!r}"
        finally:
            connection.close()
        hrefs = [unquote(node.text or "") for node in ET.fromstring(body).iter("{DAV:}href")]
        listed = {href.rstrip("/").rsplit("/", 1)[-1] for href in hrefs if href.rstrip("/") != path.rstrip("/")}
        assert listed == names, (f"PROPFIND listed {len(listed)} of {len(names)} entries "
                                 f"(missing e.g. {sorted(names - listed)[:3]}, extra {sorted(listed - names)[:3]})")
        self.result.notes.append(f"PROPFIND answer: {len(body) / MIB:.1f} MiB for {len(hrefs):,} responses")
        return statistics.median(timings)

    def get_p50(self) -> float:
        rng = random.Random(GETS)
        files = sorted(p for p in self.small.rglob("*") if p.is_file())
        connection, timings = self.connection(), []
        try:
            for path in (rng.choice(files) for _ in range(GETS)):
                url = f"{self.server.root}bench/small/{path.relative_to(self.small).as_posix()}"
                began = time.perf_counter()
                status, body = self.request(connection, "GET", url)
                timings.append((time.perf_counter() - began) * 1000)
                assert status == 200 and body == path.read_bytes(), f"GET {url} answered {status}, {len(body)} bytes"
        finally:
            connection.close()
        return median(timings)


# -- the report -------------------------------------------------------------------------------

def times_faster(metric: Metric, hearth: float | None, other: float | None) -> float | None:
    """How many times faster hearth is (above 1: faster)."""
    if not hearth or not other:
        return None
    return hearth / other if metric.rate else other / hearth


def report(results: list[Result], skipped: dict[str, str], machine: MachineLoad, seconds: float) -> str:
    by = {r.name: r for r in results}
    others = [name for name in ("wsgidav", "nginx") if name in by]
    rclone = _output(["rclone", "version"]).splitlines()[0]
    head = (f"== WebDAV on loopback, {seconds:.0f} s: {os.cpu_count()} CPUs, Linux {os.uname().release}, "
            f"Python {sys.version.split()[0]}, HEARTH_BENCH_SCALE={SCALE:g}\n"
            f"   {', '.join(f'{r.name} {r.version}' for r in results)}"
            + "".join(f", {name} SKIPPED ({why})" for name, why in skipped.items()) + "\n"
            f"   client: {rclone} (webdav backend, vendor=other, 4 transfers, 8 checkers); PROPFIND and GET "
            f"from one kept-alive http.client connection\n"
            f"   rclone's webdav backend waits {RCLONE_PACER_MS} ms between its API calls (its pacer; this "
            f"rclone has no flag to change it), about 3 calls a small file: the small-file rows measure that "
            f"pacer more than the servers\n"
            f"   data: {SMALL_FILES:,} files of {SMALL_BYTES // KIB} KiB in {SMALL_DIRS} directories, one file of "
            f"{BIG_BYTES // MIB} MiB, random bytes; a directory of {LISTED:,} small files for PROPFIND\n"
            f"   machine: {machine.describe()}"
            + "".join(f"\n   {r.name}: {note}" for r in results for note in r.notes))
    header = ["metric", *by, *(f"hearth vs {name}" for name in others)]
    body = []
    for metric in METRICS:
        spec = ",.1f" if metric.rate else ".1f"
        row = [metric.label, *(fmt(r.values.get(metric.key), spec) for r in results)]
        row += [fmt(times_faster(metric, by["hearth"].values.get(metric.key), by[name].values.get(metric.key)),
                    ".2f", "x faster") for name in others]
        body.append(row)
    table = format_table("results (ms: median; 'x faster' = hearth's speed / theirs, below 1: slower)",
                         header, body)
    return "\n" + "\n\n".join([head, table, goals(by)]) + "\n"


def goals(by: dict[str, Result]) -> str:
    hearth = by["hearth"]
    propfind = hearth.values.get("propfind")
    lines = [f"PROPFIND depth 1 of {LISTED:,} entries < {GOAL_PROPFIND_MS:g} ms: {fmt(propfind, '.1f', ' ms')} "
             f"{judged(None if propfind is None else GOAL_PROPFIND_MS / propfind, 1.0)}"
             + ("" if LISTED == 10_000 else f" (NOT at 10k: HEARTH_BENCH_SCALE={SCALE:g})")]
    if "hearth-s3" in by:
        for metric in METRICS[:4]:
            speed = times_faster(metric, by["hearth-s3"].values.get(metric.key), hearth.values.get(metric.key))
            lines.append(f"{metric.label} with chunks in S3 within {1 / GOAL_S3_VS_LOCAL:g}x of local: "
                         f"{fmt(speed, '.2f', 'x')} {judged(speed, GOAL_S3_VS_LOCAL)}"
                         + cpu_beside(metric.key, by["hearth-s3"], hearth))
    if "wsgidav" in by:
        for metric in METRICS:
            speedup = times_faster(metric, hearth.values.get(metric.key), by["wsgidav"].values.get(metric.key))
            lines.append(f"{metric.label} >= {GOAL_VS_WSGIDAV:g}x wsgidav: {fmt(speedup, '.2f', 'x')} "
                         f"{judged(speedup, GOAL_VS_WSGIDAV)}")
    return "goals (printed, not asserted):\n  " + "\n  ".join(lines)


def cpu_beside(key: str, s3: Result, local: Result) -> str:
    """The CPU seconds the copy cost with S3 and with local disk, all processes together: what bounds the
    ratio on a busy machine, whose other load takes its share of the CPUs from whichever costs more."""
    if key not in s3.cpu or key not in local.cpu:
        return ""
    shares = ", ".join(f"{name} {s:.1f}" for name, s in s3.cpu[key].items())
    return (f" (CPU: {sum(s3.cpu[key].values()):.1f} s with S3 ({shares}), {sum(local.cpu[key].values()):.1f} s local;"
            f" CPUs idle {s3.idle[key]:.0%} of the S3 copy)")


def idle_cpu_seconds() -> float:
    """CPU time the whole machine has spent idle (or waiting for I/O) since boot, all CPUs together."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    return (int(fields[4]) + int(fields[5])) / CLOCK_TICKS


def judged(value: float | None, goal: float) -> str:
    return "no number" if value is None else ("met" if value >= goal else "MISSED")


# -- the benchmark ----------------------------------------------------------------------------

def test_files_bench(tmp_path: Path, nginx, seaweed) -> None:
    if shutil.which("rclone") is None:
        pytest.skip("rclone is not installed (Debian package rclone; .ci/run installs it)")
    began, machine = time.monotonic(), MachineLoad()
    skipped: dict[str, str] = {}
    starters: dict[str, Callable[[Path], Server]] = {
        "hearth": start_hearth, "hearth-s3": lambda workdir: start_hearth(workdir, seaweed)}
    if shutil.which("wsgidav", path=str(Path(sys.executable).parent)) is None:
        skipped["wsgidav"] = "wsgidav is not installed: .venv/bin/pip install -e '.[bench]'"
    else:
        starters["wsgidav"] = start_wsgidav
    nginx_path, why = nginx_with_dav(nginx)
    if nginx_path is None:
        skipped["nginx"] = why
    else:
        starters["nginx"] = lambda workdir: start_nginx(workdir, nginx_path)
    print(f"\nbench: writing {SMALL_FILES:,} small files and {BIG_BYTES // MIB} MiB", flush=True)
    small, big = make_data(tmp_path / "data")
    results = []
    for name, start in starters.items():
        print(f"bench: {name}", flush=True)
        server = start(tmp_path)
        try:
            results.append(Run(server, tmp_path, small, big).all())
        finally:
            code = server.stop()
        if name.startswith("hearth") and code:
            results[-1].problems.append(f"the daemon exited {code}")
        print(f"bench: {name} done, {time.monotonic() - began:.0f} s in", flush=True)
    print(report(results, skipped, machine, time.monotonic() - began))

    theirs = [f"{r.name}: {p}" for r in results if not r.name.startswith("hearth") for p in r.problems]
    if theirs:
        print("what the other servers got wrong (reported, not failed):\n  " + "\n  ".join(theirs))
    ours = [f"{r.name}: {p}" for r in results if r.name.startswith("hearth") for p in r.problems]
    assert not ours, "hearth answered wrongly:\n  " + "\n  ".join(ours)
