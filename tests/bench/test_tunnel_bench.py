"""hearth's tunnel next to an OpenSSH reverse tunnel and no tunnel at all, in one run on loopback.

One home front end (TLS, certificate for home.test from a throwaway CA) is
reached three ways (tests/bench/tunnel_paths.py): direct to its TLS listener;
through hearth's relay and agent (SNI passthrough, pool connection, PROXY v2
into the front's PROXY listener); and through `ssh -N -R` to an sshd started
here with its own keys and config (OpenSSH's default cipher). The client is
curl, the same for every path, speaking TLS to home.test end to end.

What is measured, paths interleaved and their order rotated each round so
drift in the machine spreads over every row:

* down/up MB/s (MB = 10^6 bytes): GET of BIG_BYTES (256 MiB, scaled by
  HEARTH_BENCH_SCALE) streamed by a small origin behind the front end
  (route /up/), and POST of a BIG_BYTES file the origin counts; TRANSFER_RUNS
  each, medians. "tunnel CPU s/GB" is the CPU the tunnel's own processes used
  per GB moved (relay + agent; sshd + ssh), both directions together.
* "tunnel CPU ms/conn": the same processes' CPU per request in the
  new-connection latency runs: what one public connection costs the tunnel
  (for hearth, the carried stream plus the pool connection dialled to replace it).
* p50/p99 latency of GET /healthz (answered by the front end itself):
  REQUESTS sequential requests per round on one kept-alive connection, and
  REQUESTS each on a new connection (TCP + TLS handshake, with the TLS session
  resumed as curl does), LATENCY_ROUNDS rounds pooled. The first request of
  each round (connection set-up, cold caches) is left out.

Timings and goals (tunnel throughput at least ssh -R's, added p50 over direct
under 1 ms) are printed, never asserted. Correctness is asserted for direct
and hearth: every status 200, every byte count, and the connection count
curl reports (one per request, or one in all on keep-alive); ssh -R's
problems are printed. Without OpenSSH its row says why.
"""
from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.bench.conftest import Tool, _debian_tool
from tests.bench.tables import fmt, format_table, median, ratio
from tests.bench.test_front_throughput import MachineLoad, tree_cpu_seconds
from tests.bench.tunnel_paths import POOL_SIZE, SITE, Entrance, Home

MIB = 1024 * 1024
SCALE = float(os.environ.get("HEARTH_BENCH_SCALE", "1"))
BIG_BYTES = max(8 * MIB, round(256 * MIB * SCALE) // MIB * MIB)
REQUESTS = max(50, round(200 * SCALE))
TRANSFER_RUNS = 3
LATENCY_ROUNDS = 3
TRANSFER_TIMEOUT = 300
GOAL_ADDED_P50_MS = 1.0

pytestmark = [
    pytest.mark.timeout(900),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc for CPU time: Linux only"),
]


@dataclass(frozen=True)
class Transfer:
    """One big transfer: MB/s, the tunnel's CPU seconds spent on it, or what went wrong."""

    seconds: float
    tunnel_cpu: float | None
    problem: str = ""

    @property
    def mb_per_s(self) -> float | None:
        return None if self.problem or not self.seconds else BIG_BYTES / self.seconds / 1e6


@dataclass
class Measured:
    entrance: Entrance
    tunnel_pids: list[int]
    downloads: list[Transfer] = field(default_factory=list)
    uploads: list[Transfer] = field(default_factory=list)
    kept_alive_ms: list[float] = field(default_factory=list)
    new_connection_ms: list[float] = field(default_factory=list)
    new_connection_cpu: list[float] = field(default_factory=list)   # tunnel CPU seconds per request, per run
    problems: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.entrance.name

    def down(self) -> float | None:
        return median(t.mb_per_s for t in self.downloads)

    def up(self) -> float | None:
        return median(t.mb_per_s for t in self.uploads)

    def cpu_per_gb(self) -> float | None:
        transfers = [t for t in self.downloads + self.uploads if t.tunnel_cpu is not None and not t.problem]
        return sum(t.tunnel_cpu for t in transfers) / (len(transfers) * BIG_BYTES / 1e9) if transfers else None

    def cpu_ms_per_connection(self) -> float | None:
        return median(self.new_connection_cpu) * 1000 if self.new_connection_cpu else None


def percentile(samples: list[float], share: float) -> float | None:
    if not samples:
        return None
    return statistics.quantiles(samples, n=100, method="inclusive")[round(share * 100) - 1]


# -- curl: the client of every path --------------------------------------------------

def curl_argv(home: Home, entrance: Entrance) -> list[str]:
    return ["curl", "-sS", "--cacert", str(home.ca_file), "--resolve", f"{SITE}:{entrance.port}:127.0.0.1"]


def url(entrance: Entrance, path: str) -> str:
    return f"https://{SITE}:{entrance.port}{path}"


def transfer(home: Home, measured: Measured, upload: Path | None) -> Transfer:
    """GET BIG_BYTES to /dev/null, or POST the `upload` file; byte counts checked at both ends for uploads."""
    argv = curl_argv(home, measured.entrance) + ["--max-time", str(TRANSFER_TIMEOUT),
                                                 "-w", "\n%{http_code} %{size_download} %{size_upload} %{time_total}"]
    if upload is None:
        argv += ["-o", "/dev/null", url(measured.entrance, f"/up/download?n={BIG_BYTES}")]
    else:
        argv += ["-X", "POST", "-T", str(upload), "-H", "Expect:", "-H", "Content-Type: application/octet-stream",
                 url(measured.entrance, "/up/upload")]
    cpu_before = tunnel_cpu(measured)
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=TRANSFER_TIMEOUT + 10)
    cpu = tunnel_cpu(measured) - cpu_before if measured.tunnel_pids else None
    body, _, stats = result.stdout.rpartition("\n")
    try:
        status, downloaded, uploaded, seconds = stats.split()
        moved = int(float(uploaded if upload else downloaded))
    except ValueError:
        return Transfer(0.0, None, f"curl exited {result.returncode}: {result.stderr.strip() or stats}")
    problem = ""
    if result.returncode != 0 or status != "200":
        problem = f"curl exited {result.returncode}, HTTP {status}: {result.stderr.strip()}"
    elif moved != BIG_BYTES:
        problem = f"{moved:,} of {BIG_BYTES:,} bytes {'sent' if upload else 'received'}"
    elif upload is not None and body.strip() != str(BIG_BYTES):
        problem = f"the origin counted {body.strip()!r} bytes, not {BIG_BYTES:,}"
    return Transfer(float(seconds), cpu, problem)


def tunnel_cpu(measured: Measured) -> float:
    return sum(tree_cpu_seconds(pid) for pid in measured.tunnel_pids)


def latencies(home: Home, measured: Measured, new_connections: bool, workdir: Path) -> list[float]:
    """REQUESTS timed GET /healthz (ms) after one untimed, in one curl run; problems noted on `measured`."""
    config = workdir / f"latency-{measured.name.replace(' ', '')}.curlrc"
    lines = ['write-out = "%{http_code} %{size_download} %{num_connects} %{time_total}\\n"']
    if new_connections:
        lines.append('header = "Connection: close"')   # the front closes after answering; curl reconnects
    lines += [f'url = "{url(measured.entrance, "/healthz")}"\noutput = "/dev/null"'] * (REQUESTS + 1)
    config.write_text("\n".join(lines) + "\n")
    cpu_before = tunnel_cpu(measured)
    result = subprocess.run(curl_argv(home, measured.entrance) + ["-K", str(config)], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, timeout=120)
    if new_connections and measured.tunnel_pids:
        measured.new_connection_cpu.append((tunnel_cpu(measured) - cpu_before) / (REQUESTS + 1))
    kind = "new-connection" if new_connections else "kept-alive"
    rows = [line.split() for line in result.stdout.splitlines()]
    if result.returncode != 0 or len(rows) != REQUESTS + 1:
        measured.problems.append(f"{kind} latency: curl exited {result.returncode} after {len(rows)} of "
                                 f"{REQUESTS + 1} requests: {result.stderr.strip()}")
        return []
    wrong = [row for row in rows if row[0] != "200" or int(row[1]) == 0]
    # Keep-alive: only the untimed first request connects. New connections: every request does.
    connects = [int(row[2]) for row in rows[1:]]
    if wrong:
        measured.problems.append(f"{kind} latency: {len(wrong)} answers not 200 with a body, e.g. {wrong[0]}")
    if connects != [1 if new_connections else 0] * REQUESTS:
        measured.problems.append(f"{kind} latency: {sum(connects)} connections for {REQUESTS} requests")
    return [float(row[3]) * 1000 for row in rows[1:]]


def upload_file(directory: Path) -> Path:
    path, block = directory / "upload.bin", os.urandom(MIB)
    with open(path, "wb") as out:
        for _ in range(BIG_BYTES // MIB):
            out.write(block)
    return path


def measure(home: Home, targets: list[Measured], workdir: Path) -> None:
    live = [t for t in targets if t.entrance.port is not None]
    for round_ in range(LATENCY_ROUNDS):
        for measured in live[round_ % len(live):] + live[:round_ % len(live)]:
            measured.kept_alive_ms += latencies(home, measured, False, workdir)
            measured.new_connection_ms += latencies(home, measured, True, workdir)
    upload = upload_file(workdir)
    for round_ in range(TRANSFER_RUNS):
        for measured in live[round_ % len(live):] + live[:round_ % len(live)]:
            measured.downloads.append(transfer(home, measured, None))
            measured.uploads.append(transfer(home, measured, upload))
    upload.unlink()
    for measured in live:
        for direction, transfers in (("download", measured.downloads), ("upload", measured.uploads)):
            measured.problems += [f"{direction} {i}: {t.problem}" for i, t in enumerate(transfers, 1) if t.problem]


# -- the report ------------------------------------------------------------------------

def results_table(targets: list[Measured]) -> str:
    header = ["", "down MB/s", "up MB/s", "tunnel CPU s/GB", "p50 ms", "p99 ms", "p50 ms new conn",
              "p99 ms new conn", "tunnel CPU ms/conn", "notes"]
    body = []
    for t in targets:
        if t.entrance.reason:
            body.append([t.name] + ["—"] * 8 + [f"SKIPPED: {t.entrance.reason}"])
            continue
        body.append([t.name, fmt(t.down(), ",.0f"), fmt(t.up(), ",.0f"), fmt(t.cpu_per_gb(), ".2f"),
                     fmt(percentile(t.kept_alive_ms, 0.5), ".2f"), fmt(percentile(t.kept_alive_ms, 0.99), ".2f"),
                     fmt(percentile(t.new_connection_ms, 0.5), ".2f"),
                     fmt(percentile(t.new_connection_ms, 0.99), ".2f"), fmt(t.cpu_ms_per_connection(), ".2f"),
                     "; ".join(t.problems)])
    return format_table(f"MB/s: median of {TRANSFER_RUNS} transfers of {BIG_BYTES / MIB:g} MiB; latency: "
                        f"{LATENCY_ROUNDS} x {REQUESTS} GET /healthz, pooled", header, body)


def comparisons(targets: list[Measured]) -> str:
    by = {t.name: t for t in targets if not t.entrance.reason}
    hearth, direct, ssh = by["hearth"], by["direct"], by.get("ssh -R")
    lines = []
    if ssh is not None:
        lines.append(format_table("ratios hearth / ssh -R (MB/s above 1x: hearth faster; ms above 1x: hearth slower)",
                                  ["", "down", "up", "p50", "p50 new conn"],
                                  [["hearth / ssh -R"] + [fmt(r, ".2f", "x") for r in (
                                      ratio(hearth.down(), ssh.down()), ratio(hearth.up(), ssh.up()),
                                      ratio(percentile(hearth.kept_alive_ms, .5), percentile(ssh.kept_alive_ms, .5)),
                                      ratio(percentile(hearth.new_connection_ms, .5),
                                            percentile(ssh.new_connection_ms, .5)))] + [""]]))
    added = []
    for t in [x for x in (hearth, ssh) if x is not None]:
        for label, samples, base in (("kept-alive", t.kept_alive_ms, direct.kept_alive_ms),
                                     ("new connection", t.new_connection_ms, direct.new_connection_ms)):
            p50, p50_direct = percentile(samples, .5), percentile(base, .5)
            added.append(f"{t.name} adds {fmt(p50 - p50_direct if p50 and p50_direct else None, '+.2f')} ms "
                         f"to direct's p50 ({label})")
    lines.append("added latency: " + "; ".join(added))
    lines.append(verdict(hearth, direct, ssh))
    return "\n\n".join(lines)


def verdict(hearth: Measured, direct: Measured, ssh: Measured | None) -> str:
    def met(ok: bool | None) -> str:
        return "no number" if ok is None else ("met" if ok else "MISSED")

    parts = []
    if ssh is None:
        parts.append("throughput vs ssh -R: not judged (no ssh -R row)")
    else:
        for label, ours, theirs in (("down", hearth.down(), ssh.down()), ("up", hearth.up(), ssh.up())):
            parts.append(f"{label} {fmt(ratio(ours, theirs), '.2f', 'x')} ssh -R's — "
                         f"{met(None if ours is None or theirs is None else ours >= theirs)}")
    for label, samples, base in (("kept-alive", hearth.kept_alive_ms, direct.kept_alive_ms),
                                 ("new connection", hearth.new_connection_ms, direct.new_connection_ms)):
        p50, p50_direct = percentile(samples, .5), percentile(base, .5)
        added = p50 - p50_direct if p50 is not None and p50_direct is not None else None
        parts.append(f"added p50 {label} {fmt(added, '+.2f', ' ms')} — "
                     f"{met(None if added is None else added < GOAL_ADDED_P50_MS)}")
    return (f"goals (tunnel throughput >= ssh -R's; added p50 over direct < {GOAL_ADDED_P50_MS:g} ms): "
            + "; ".join(parts))


def report(home: Home, sshd: Tool, targets: list[Measured], machine: MachineLoad, seconds: float) -> str:
    ssh = next(t for t in targets if t.name == "ssh -R")
    head = (f"== the tunnel on loopback, {seconds:.0f} s: {os.cpu_count()} CPUs, Linux {os.uname().release}, "
            f"Python {sys.version.split()[0]}, HEARTH_BENCH_SCALE={SCALE:g}\n"
            "   direct: curl → front (TLS); hearth: curl → relay → agent → front's PROXY listener (TLS at the "
            "front);\n   ssh -R: curl → sshd → ssh → front (TLS), "
            + (f"{sshd.version.split(',')[0]}, cipher {home.ssh_cipher()} (OpenSSH's default)"
               if not ssh.entrance.reason else "not run")
            + f"\n   hearth's agent keeps {POOL_SIZE} pool connections; front: rate_limit = 0\n"
            f"   machine: {machine.describe()}")
    return "\n" + "\n\n".join([head, results_table(targets), comparisons(targets)]) + "\n"


# -- the benchmark ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def sshd() -> Tool:
    """OpenSSH's server (Debian package `openssh-server`, which brings the client), apt-installed when
    missing and we are root, with its service held back as for the other benchmarks' tools."""
    return _debian_tool("sshd", "sshd", "openssh-server", ["-V"])


def test_tunnel_bench(tmp_path: Path, sshd: Tool) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed (apt-get install curl)")
    machine, began = MachineLoad(), time.monotonic()
    home = Home(tmp_path)
    try:
        direct, hearth = home.start()
        ssh = home.start_ssh_tunnel(sshd)
        pids = {d.name: d.pid for d in home.daemons}
        targets = [Measured(direct, []), Measured(hearth, [pids["relay"], pids["agent"]]),
                   Measured(ssh, [pids["sshd"], pids["ssh"]] if ssh.port else [])]
        if ssh.reason:
            print(f"\nbench: ssh -R row skipped: {ssh.reason}")
        measure(home, targets, tmp_path)
    finally:
        home.stop()
    print(report(home, sshd, targets, machine, time.monotonic() - began))
    if targets[2].problems:
        print("ssh -R had problems (reported, not failed):\n  " + "\n  ".join(targets[2].problems))
    ours = [f"{t.name}: {'; '.join(t.problems)}" for t in targets[:2] if t.problems]
    assert not ours, "errors or wrong byte counts:\n" + "\n".join(ours)
    for t in targets[:2]:
        assert len(t.kept_alive_ms) == len(t.new_connection_ms) == LATENCY_ROUNDS * REQUESTS
