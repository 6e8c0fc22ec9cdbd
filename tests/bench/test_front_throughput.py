"""Requests per second, latency and streaming MB/s through hearth's front end, next to Caddy and nginx.

One origin, a tiny aiohttp app in its own process (ORIGIN), is reached four ways
on loopback: direct, through hearth's front end, through Caddy and through
nginx. The proxies are configured here for plain reverse proxying, as alike as
they allow:

* buffering off both ways (nginx `proxy_buffering off; proxy_request_buffering
  off`, Caddy `flush_interval -1`; hearth always streams);
* keep-alive to the origin with room for every client connection (nginx
  `keepalive 64` over HTTP/1.1, Caddy `keepalive_idle_conns_per_host 64`;
  hearth's pool has no cap), and no cap on requests per connection either side
  (nginx's `keepalive_requests` default of 1000 would make wrk reconnect);
* one access-log line per request to a file, since hearth always writes one;
* hearth with `rate_limit = 0` and `max_connections = 100000`, so its per-client
  limits (100 requests/s, 256 connections by default) do not turn the load into
  429s; nginx with one worker; Caddy with GOMAXPROCS following its CPU affinity.

What is measured, each cell a median, targets interleaved and their order
rotated each round so drift in the machine spreads over every row:

* req/s, p50, p99: `wrk -t1 -c50 -d5s --latency` on GET /small (200 bytes),
  after a 1 s warm-up per target; 5 runs, as single runs on a shared 2-CPU
  VM land 20-30% either side of the median. CPU µs/req is the serving
  process tree's own CPU (the proxy's; the origin's for direct) over the run,
  per request: the proxy's cost even where the origin is the ceiling.
* down/up MB/s (MB = 10^6 bytes): curl, GET /big (256 MiB, streamed from one
  reused buffer) to /dev/null, and POST /upload of a 256 MiB file with `-T`
  (without `Expect: 100-continue`, so the upload is bytes only); 3 runs.
  nginx keeps its default `proxy_buffer_size` (4 KiB): unbuffered, it moves
  that much per read, which caps its download well below what 64 KiB
  buffers reach. That is nginx as configured plainly, not nginx at its best.

CPUs: the client (wrk, curl) gets a CPU of its own; the origin and the proxy
share the rest (one CPU on a 2-CPU machine: a proxy's CPU is taken from the
origin, as on a small home server), or get one each with 3 or more. The layout
is printed. Timings are printed, never asserted. Byte counts and wrk's errors
fail the benchmark for direct and hearth, and are reported for Caddy and nginx.
"""
from __future__ import annotations

import dataclasses
import http.client
import os
import re
import resource
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from tests.bench.tables import fmt, format_table, median, ratio
from tests.installation import free_port, http_get

MIB = 1024 * 1024
SMALL_BYTES = 200
BIG_BYTES = 256 * MIB
LOAD_RUNS = 5
TRANSFER_RUNS = 3
WRK_ARGS = ["-t1", "-c50", "-d5s", "--latency"]
WARMUP_ARGS = ["-t1", "-c50", "-d1s"]
ERROR_SHARE = 0.001          # wrk socket errors tolerated, as a share of requests; non-2xx: none
GOAL_RPS_VS_CADDY = 1 / 1.5  # "within 1.5x of Caddy's req/s"
GOAL_MBPS_VS_CADDY = 1.0     # "at least Caddy's streaming MB/s"
START_TIMEOUT = 20.0
TRANSFER_TIMEOUT = 120
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

pytestmark = [
    pytest.mark.timeout(900),  # apt-get may run first; the runs take about 2 minutes
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pins CPUs and reads /proc: Linux only"),
]

ORIGIN = Path(__file__).with_name("origin.py")   # run as a file in its own process


# -- processes: the origin, the proxies, and the CPUs they run on ------------------------

@dataclass(frozen=True)
class Layout:
    """Which CPUs the client, the origin and the proxy run on; None: not pinned."""

    client: str | None
    origin: str | None
    proxy: str | None

    @staticmethod
    def choose() -> "Layout":
        cpus = sorted(os.sched_getaffinity(0))
        if shutil.which("taskset") is None or len(cpus) < 2:
            return Layout(None, None, None)
        if len(cpus) == 2:
            return Layout(str(cpus[0]), str(cpus[1]), str(cpus[1]))
        return Layout(str(cpus[0]), str(cpus[1]), str(cpus[2]))

    def pin(self, cpu: str | None, argv: list[str]) -> list[str]:
        return argv if cpu is None else ["taskset", "-c", cpu, *argv]

    def describe(self) -> str:
        if self.client is None:
            return f"not pinned ({len(os.sched_getaffinity(0))} CPU(s), or no taskset)"
        shared = " (shared)" if self.origin == self.proxy else ""
        return f"client on CPU {self.client}, origin on CPU {self.origin}, proxy on CPU {self.proxy}{shared}"


class Daemon:
    """A server process of this benchmark: output to a file, stopped by its pid at the end."""

    def __init__(self, name: str, argv: list[str], workdir: Path, env: dict[str, str] | None = None):
        self.name, self.argv, self.output = name, argv, workdir / f"{name}.out"
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(argv, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                                            stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int) -> str:
        try:
            return "\n".join(self.output.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_answering(self, port: int, timeout: float) -> None:
        """Until the server answers OPTIONS / with any HTTP status; AssertionError with its output if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.tail(20)}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("OPTIONS", "/")
                connection.getresponse().read()
                connection.close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{self.name} not listening on {port} after {timeout:g} s:\n{self.tail(20)}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()


def wait_serving(daemon: Daemon, port: int) -> str:
    """'' once GET /small through `port` answers 200, or why it never did."""
    deadline, last = time.monotonic() + START_TIMEOUT, "no answer"
    while time.monotonic() < deadline:
        if daemon.process.poll() is not None:
            return f"{daemon.name} exited with {daemon.process.returncode}: {daemon.tail(1)}"
        try:
            status, body = http_get(port, "/small")
            if status == 200 and len(body) == SMALL_BYTES:
                return ""
            last = f"GET /small answered {status} with {len(body)} bytes"
        except OSError as error:
            last = str(error)
        time.sleep(0.05)
    return f"{daemon.name} not serving after {START_TIMEOUT:g} s: {last}; {daemon.tail(1)}"


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants still alive (nginx's workers)."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(child) for child in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue
    return total


def start_hearth(workdir: Path, origin_port: int, layout: Layout) -> tuple[Daemon, int]:
    port = free_port()
    (workdir / "hearth.toml").write_text(textwrap.dedent(f"""\
        data_dir = "var"
        [front]
        listen = "127.0.0.1:{port}"
        rate_limit = 0
        max_connections = 100000

        [[route]]
        path = "/"
        upstream = "127.0.0.1:{origin_port}"
        """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    argv = layout.pin(layout.proxy, [sys.executable, "-m", "services.front", "--config", "hearth.toml"])
    return Daemon("hearth", argv, workdir, env), port


def start_caddy(path: str, workdir: Path, origin_port: int, layout: Layout) -> tuple[Daemon, int]:
    port = free_port()
    (workdir / "Caddyfile").write_text(textwrap.dedent(f"""\
        {{
            admin off
            auto_https off
            storage file_system {{
                root {workdir / "data"}
            }}
        }}

        :{port} {{
            bind 127.0.0.1
            log {{
                output file {workdir / "access.log"}
            }}
            reverse_proxy 127.0.0.1:{origin_port} {{
                flush_interval -1
                transport http {{
                    keepalive_idle_conns_per_host 64
                }}
            }}
        }}
        """))
    # Its own HOME and XDG directories: Caddy writes nothing outside the work directory.
    env = {**os.environ, "HOME": str(workdir), "XDG_DATA_HOME": str(workdir / "data"),
           "XDG_CONFIG_HOME": str(workdir / "config")}
    argv = layout.pin(layout.proxy, [path, "run", "--config", "Caddyfile", "--adapter", "caddyfile"])
    return Daemon("caddy", argv, workdir, env), port


def start_nginx(path: str, workdir: Path, origin_port: int, layout: Layout) -> tuple[Daemon, int]:
    port = free_port()
    temp = workdir / "temp"
    temp.mkdir()
    as_root = "user root;\n" if os.geteuid() == 0 else ""  # its worker then reads our 0700 temp directory
    (workdir / "nginx.conf").write_text(as_root + textwrap.dedent(f"""\
        worker_processes 1;
        pid {workdir / "nginx.pid"};
        error_log {workdir / "error.log"} warn;
        events {{ worker_connections 4096; }}
        http {{
            access_log {workdir / "access.log"};
            client_body_temp_path {temp / "body"};
            proxy_temp_path {temp / "proxy"};
            fastcgi_temp_path {temp / "fastcgi"};
            uwsgi_temp_path {temp / "uwsgi"};
            scgi_temp_path {temp / "scgi"};
            client_max_body_size 0;
            keepalive_requests 1000000;
            upstream origin {{
                server 127.0.0.1:{origin_port};
                keepalive 64;
                keepalive_requests 1000000;
            }}
            server {{
                listen 127.0.0.1:{port};
                location / {{
                    proxy_pass http://origin;
                    proxy_http_version 1.1;
                    proxy_set_header Connection "";
                    proxy_set_header Host $http_host;
                    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
                    proxy_buffering off;
                    proxy_request_buffering off;
                }}
            }}
        }}
        """))
    # -e: the error log before the configuration is read, which otherwise is /var/log/nginx/error.log.
    argv = layout.pin(layout.proxy, [path, "-e", str(workdir / "error.log"), "-p", str(workdir),
                                     "-c", str(workdir / "nginx.conf"), "-g", "daemon off;"])
    return Daemon("nginx", argv, workdir), port


class MachineLoad:
    """What else ran during the benchmark: CPU used by processes other than ours, and time the hypervisor stole.

    Ours is this process and every child it waited for (rusage); the machine's is
    /proc/stat's busy time. Another session's test run on a shared machine shows
    up here, and is the usual reason two runs disagree.
    """

    def __init__(self):
        self.began, self.busy, self.steal, self.ours = time.monotonic(), *self._machine(), self._ours()

    @staticmethod
    def _machine() -> tuple[float, float]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
        return (user + nice + system + irq + softirq) / CLOCK_TICKS, steal / CLOCK_TICKS

    @staticmethod
    def _ours() -> float:
        return sum(usage.ru_utime + usage.ru_stime for usage in (resource.getrusage(resource.RUSAGE_SELF),
                                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))

    def describe(self) -> str:
        busy, steal = self._machine()
        seconds = time.monotonic() - self.began
        others = max(0.0, busy - self.busy - (self._ours() - self.ours))
        return (f"other processes used {others / seconds:.0%} of a CPU meanwhile, the hypervisor stole "
                f"{(steal - self.steal) / seconds:.0%} (near 0% on a quiet machine; more skews every number)")


# -- measuring --------------------------------------------------------------------------

@dataclass(frozen=True)
class Load:
    """One wrk run's numbers."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    socket_errors: int
    non_2xx: int
    cpu_us_per_request: float | None


@dataclass(frozen=True)
class Transfer:
    """One 256 MiB transfer: the bytes that arrived and how long it took; `problem` if it went wrong."""

    bytes: int
    seconds: float
    problem: str = ""

    @property
    def mb_per_s(self) -> float | None:
        return None if self.problem or not self.seconds else BIG_BYTES / self.seconds / 1e6


@dataclass
class Target:
    """One way of reaching the origin, and what was measured through it."""

    name: str
    kind: str               # direct | hearth | third-party
    port: int | None
    serving_pid: int | None  # whose CPU is counted: the proxy, or the origin for direct
    reason: str = ""        # why it is not measured
    loads: list[Load] = field(default_factory=list)
    downloads: list[Transfer] = field(default_factory=list)
    uploads: list[Transfer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def median(self, value: Callable[[Load], float | None]) -> float | None:
        return median(value(load) for load in self.loads)

    @property
    def rps(self) -> float | None:
        return self.median(lambda load: load.rps)

    @property
    def rps_spread(self) -> float | None:
        return _spread([load.rps for load in self.loads])

    @property
    def down(self) -> float | None:
        return median(transfer.mb_per_s for transfer in self.downloads)

    @property
    def up(self) -> float | None:
        return median(transfer.mb_per_s for transfer in self.uploads)


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(output: str) -> tuple[float, float, float, int, int, int]:
    """(req/s, p50 ms, p99 ms, requests, socket errors, non-2xx) from `wrk --latency` output."""
    def latency(percent: str) -> float:
        found = re.search(rf"^\s*{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
        if found is None:
            raise ValueError(f"no {percent}% latency in wrk's output:\n{output}")
        return float(found.group(1)) * _UNITS[found.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    requests = re.search(r"(\d+) requests in", output)
    if rps is None or requests is None:
        raise ValueError(f"no Requests/sec in wrk's output:\n{output}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return (float(rps.group(1)), latency("50"), latency("99"), int(requests.group(1)),
            sum(map(int, errors.groups())) if errors else 0, int(non_2xx.group(1)) if non_2xx else 0)


def run_wrk(wrk: str, target: Target, layout: Layout, args: list[str]) -> Load | None:
    """One wrk run against GET /small; None for a warm-up (no --latency)."""
    cpu_before = tree_cpu_seconds(target.serving_pid) if target.serving_pid else None
    result = subprocess.run(layout.pin(layout.client, [wrk, *args, target.url("/small")]),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    cpu = tree_cpu_seconds(target.serving_pid) - cpu_before if cpu_before is not None else None
    if result.returncode != 0:
        raise AssertionError(f"wrk against {target.name} exited {result.returncode}: {result.stderr.strip()}")
    if "--latency" not in args:
        return None
    rps, p50, p99, requests, socket_errors, non_2xx = parse_wrk(result.stdout)
    return Load(rps, p50, p99, requests, socket_errors, non_2xx,
                cpu / requests * 1e6 if cpu is not None and requests else None)


def run_curl(curl: str, target: Target, layout: Layout, upload: Path | None) -> Transfer:
    """GET /big to /dev/null, or POST /upload of `upload`; the origin's byte count is checked for uploads."""
    write_out = "\n%{http_code} %{size_download} %{size_upload} %{time_total}"
    argv = [curl, "-sS", "--max-time", str(TRANSFER_TIMEOUT), "-w", write_out]
    if upload is None:
        argv += ["-o", "/dev/null", target.url("/big")]
    else:
        argv += ["-X", "POST", "-T", str(upload), "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
                 target.url("/upload")]
    result = subprocess.run(layout.pin(layout.client, argv), stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, timeout=TRANSFER_TIMEOUT + 10)
    *body, stats = result.stdout.rsplit("\n", 1)
    try:
        status, downloaded, uploaded, seconds = stats.split()
        moved, seconds_f = int(float(uploaded if upload else downloaded)), float(seconds)
    except ValueError:
        return Transfer(0, 0.0, f"curl exited {result.returncode}: {result.stderr.strip() or stats}")
    problem = ""
    if result.returncode != 0 or status != "200":
        problem = f"curl exited {result.returncode}, HTTP {status}: {result.stderr.strip()}"
    elif moved != BIG_BYTES:
        problem = f"{moved:,} of {BIG_BYTES:,} bytes {'sent' if upload else 'received'}"
    elif upload is not None and "".join(body).strip() != str(BIG_BYTES):
        problem = f"the origin counted {''.join(body).strip()!r} bytes, not {BIG_BYTES:,}"
    return Transfer(moved, seconds_f, problem)


def upload_file(directory: Path) -> Path:
    path = directory / "upload.bin"
    block = os.urandom(MIB)
    with open(path, "wb") as out:
        for _ in range(BIG_BYTES // MIB):
            out.write(block)
    return path


# -- the report -------------------------------------------------------------------------

def _spread(values) -> float | None:
    """Half the range of the values, as a share of their median: how far to trust a cell."""
    values = [v for v in values if v is not None]
    middle = median(values)
    return (max(values) - min(values)) / 2 / middle if middle else None


def _percent(share: float | None) -> str:
    return fmt(share and share * 100, ".0f", "%")


METRICS: list[tuple[str, Callable[[Target], float | None]]] = [
    ("req/s", lambda t: t.rps),
    ("p50 ms", lambda t: t.median(lambda load: load.p50_ms)),
    ("p99 ms", lambda t: t.median(lambda load: load.p99_ms)),
    ("down MB/s", lambda t: t.down),
    ("up MB/s", lambda t: t.up),
]


def results_table(targets: list[Target]) -> str:
    header = ["", "req/s", "±", "p50 ms", "p99 ms", "CPU µs/req", "down MB/s", "±", "up MB/s", "±", "notes"]
    body = []
    for target in targets:
        if target.reason:
            body.append([target.name] + ["—"] * 9 + [f"SKIPPED: {target.reason}"])
            continue
        errors = sum(load.socket_errors for load in target.loads)
        non_2xx = sum(load.non_2xx for load in target.loads)
        notes = [f"{errors} socket errors"] * bool(errors) + [f"{non_2xx} non-2xx"] * bool(non_2xx)
        body.append([target.name, fmt(target.rps, ",.0f"), _percent(target.rps_spread),
                     fmt(METRICS[1][1](target), ".2f"), fmt(METRICS[2][1](target), ".2f"),
                     fmt(target.median(lambda load: load.cpu_us_per_request), ".0f"),
                     fmt(target.down, ",.0f"), _percent(_spread(t.mb_per_s for t in target.downloads)),
                     fmt(target.up, ",.0f"), _percent(_spread(t.mb_per_s for t in target.uploads)),
                     "; ".join(notes + target.problems)])
    return format_table(f"medians: req/s, p50, p99 of {LOAD_RUNS} runs, MB/s of {TRANSFER_RUNS}; ± is half the "
                        "range over the runs; CPU µs/req is the proxy's (the origin's for direct)", header, body)


def ratios_table(targets: list[Target]) -> str:
    """Each proxy over direct, and hearth and nginx over Caddy: every metric as a ratio."""
    by_name = {target.name: target for target in targets if not target.reason}
    pairs = [(a, b) for a, b in [("hearth", "direct"), ("caddy", "direct"), ("nginx", "direct"),
                                  ("hearth", "caddy"), ("nginx", "caddy")] if a in by_name and b in by_name]
    body = [[f"{a} / {b}"] + [fmt(ratio(value(by_name[a]), value(by_name[b])), ".2f", "x")
                              for _, value in METRICS] + [""] for a, b in pairs]
    return format_table("ratios (req/s, MB/s above 1x: faster; p50, p99 above 1x: slower)",
                        ["", *(name for name, _ in METRICS), ""], body)


def verdict(targets: list[Target], layout: Layout) -> str:
    by_name = {target.name: target for target in targets}
    hearth, caddy, direct = by_name["hearth"], by_name["caddy"], by_name["direct"]
    if caddy.reason:
        return f"goal not judged: no Caddy to compare with ({caddy.reason})"
    rps, down, up = ratio(hearth.rps, caddy.rps), ratio(hearth.down, caddy.down), ratio(hearth.up, caddy.up)

    def judged(ratio: float | None, goal: float) -> str:
        return "no number" if ratio is None else f"{ratio:.2f}x Caddy's — {'met' if ratio >= goal else 'MISSED'}"

    line = (f"goal (req/s within 1.5x of Caddy's, i.e. >= {GOAL_RPS_VS_CADDY:.2f}x; streaming >= Caddy's): "
            f"req/s {judged(rps, GOAL_RPS_VS_CADDY)}; down {judged(down, GOAL_MBPS_VS_CADDY)}; "
            f"up {judged(up, GOAL_MBPS_VS_CADDY)}\n"
            f"  (req/s runs spread ±{_percent(hearth.rps_spread)} for hearth, ±{_percent(caddy.rps_spread)} for "
            "Caddy: a ratio within that of its goal could land either side on another run)")
    if layout.origin is not None and layout.origin == layout.proxy:
        line += ("\n  origin and proxy share one CPU, so a proxy's req/s is about 1 / (its CPU µs/req + the "
                 "origin's): its own cost shows in CPU µs/req")
    ceiling = ratio(caddy.rps, direct.rps)
    if ceiling is not None and ceiling > 0.8:
        line += (f"\n  note: Caddy reaches {ceiling:.2f}x direct's req/s: the Python origin, not Caddy, sets its "
                 "ceiling here, so the req/s ratio flatters the slower proxy less than it would with a faster "
                 "origin; CPU µs/req compares the proxies' own cost")
    return line


def report(targets: list[Target], tools: list, layout: Layout, machine: MachineLoad, seconds: float) -> str:
    found = ", ".join(f"{t.name} {t.version}" if t.path else f"{t.name} SKIPPED ({t.reason})" for t in tools)
    head = (f"== the front end on loopback, {seconds:.0f} s: {os.cpu_count()} CPUs, Linux {os.uname().release}, "
            f"Python {sys.version.split()[0]}\n   {found}\n"
            f"   wrk {' '.join(WRK_ARGS)} GET /small ({SMALL_BYTES} bytes); curl 256 MiB GET /big to /dev/null "
            "and POST /upload from a file (MB = 10^6 bytes)\n"
            f"   CPUs: {layout.describe()}\n   machine: {machine.describe()}\n"
            "   hearth: rate_limit = 0, max_connections = 100000; Caddy, nginx: buffering off, keep-alive "
            "upstream; all three write an access log\n"
            "   nginx streams with its default 4 KiB proxy_buffer_size (see this file's docstring)\n"
            f"   checks: every transfer moves {BIG_BYTES:,} bytes; wrk sees no non-2xx and socket errors on at "
            f"most {ERROR_SHARE:.1%} of requests (failing for direct and hearth, noted for Caddy and nginx)")
    return "\n" + "\n\n".join([head, results_table(targets), ratios_table(targets), verdict(targets, layout)]) + "\n"


# -- the benchmark ----------------------------------------------------------------------

def _version(tool) -> str:
    found = re.search(r"\d+\.\d+(\.\d+)?", tool.version)
    return found.group(0) if found else tool.version


def _rotated(targets: list[Target], by: int) -> list[Target]:
    by %= len(targets)
    return targets[by:] + targets[:by]


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


def start_targets(root: Path, layout: Layout, caddy, nginx, daemons: list[Daemon]) -> list[Target]:
    """The origin, then hearth, Caddy and nginx in front of it, each appended to `daemons` as it starts.

    The origin or hearth not serving fails the benchmark; Caddy or nginx missing
    or not serving becomes a skipped row with the reason.
    """
    origin_dir = _directory(root / "origin")
    origin_port = free_port()
    origin = Daemon("origin", layout.pin(layout.origin, [sys.executable, str(ORIGIN), str(origin_port)]),
                    origin_dir)
    daemons.append(origin)
    failure = wait_serving(origin, origin_port)
    assert not failure, failure
    hearth, hearth_port = start_hearth(_directory(root / "hearth"), origin_port, layout)
    daemons.append(hearth)
    failure = wait_serving(hearth, hearth_port)
    assert not failure, failure
    targets = [Target("direct", "direct", origin_port, origin.pid),
               Target("hearth", "hearth", hearth_port, hearth.pid)]
    for tool, start in ((caddy, start_caddy), (nginx, start_nginx)):
        if tool.path is None:
            print(f"\nbench: {tool.name} row skipped: {tool.reason}")
            targets.append(Target(tool.name, "third-party", None, None, reason=tool.reason))
            continue
        daemon, port = start(tool.path, _directory(root / tool.name), origin_port, layout)
        daemons.append(daemon)
        targets.append(Target(tool.name, "third-party", port, daemon.pid, reason=wait_serving(daemon, port)))
    return targets


def measure(targets: list[Target], wrk: str, curl: str, layout: Layout, scratch: Path) -> None:
    """wrk runs, then 256 MiB transfers, each round over every target in a rotated order."""
    for target in targets:
        run_wrk(wrk, target, layout, WARMUP_ARGS)
    for round_ in range(LOAD_RUNS):
        for target in _rotated(targets, round_):
            target.loads.append(run_wrk(wrk, target, layout, WRK_ARGS))
    upload = upload_file(scratch)
    for round_ in range(TRANSFER_RUNS):
        for target in _rotated(targets, round_):
            target.downloads.append(run_curl(curl, target, layout, None))
            target.uploads.append(run_curl(curl, target, layout, upload))
    upload.unlink()


def check(target: Target) -> None:
    """Note wrk's errors beyond the tolerance and every transfer that went wrong in `target.problems`."""
    requests = sum(load.requests for load in target.loads)
    errors = sum(load.socket_errors for load in target.loads)
    if any(load.non_2xx for load in target.loads) or errors > ERROR_SHARE * requests:
        target.problems.append(f"over the tolerance ({ERROR_SHARE:.1%} socket errors, no non-2xx)")
    for direction, transfers in (("download", target.downloads), ("upload", target.uploads)):
        target.problems += [f"{direction} {i}: {t.problem}" for i, t in enumerate(transfers, 1) if t.problem]


def test_front_throughput(tmp_path: Path, wrk, curl, caddy, nginx) -> None:
    for tool in (wrk, curl):
        if tool.path is None:
            print(f"\nbench: front-end benchmark skipped: {tool.reason}")
            pytest.skip(tool.reason)
    tools = [dataclasses.replace(tool, version=_version(tool)) for tool in (wrk, curl, caddy, nginx)]
    layout, machine, began = Layout.choose(), MachineLoad(), time.monotonic()
    daemons: list[Daemon] = []
    try:
        targets = start_targets(tmp_path, layout, caddy, nginx, daemons)
        live = [target for target in targets if not target.reason]
        measure(live, wrk.path, curl.path, layout, tmp_path)
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
    for target in live:
        check(target)
    print(report(targets, tools, layout, machine, time.monotonic() - began))

    theirs = [f"{t.name}: {'; '.join(t.problems)}" for t in live if t.kind == "third-party" and t.problems]
    if theirs:
        print("third-party proxies had errors (reported, not failed):\n  " + "\n  ".join(theirs))
    ours = [f"{t.name}: {'; '.join(t.problems)}" for t in live if t.kind != "third-party" and t.problems]
    assert not ours, "errors or wrong byte counts:\n" + "\n".join(ours)
