"""How much output a child can push through `hearth daemon -o LOG`, next to Debian's daemon and supervisord.

Each emitter runs under every setup, several times interleaved; each cell is the median:

* flood: `yes LINE | head -n 5000000`, a native bulk writer (4-8 KiB writes)
  going flat out, so the supervisor is the bottleneck: this finds each one's
  ceiling. 5 runs: on a shared 2-core machine single runs vary by up to 30%.
* paced: a Python child writing one write(2) per line, like a line-buffered
  logger, at a realistic 20,000 lines/s and at a heavy 200,000 lines/s. 3 runs.

The child times itself (into a side file), because the question is how much the
*child* is slowed; the supervisors' start-up (supervisord waits about 1 s before
its first spawn) shows only in the end-to-end column. Peak RSS is the kernel's
high-water mark (VmHWM) of the supervising process, never the child's; its CPU
is counted from the child's start. Timings are printed, never asserted. Lost or
mangled lines fail the benchmark for hearth and the plain-file baseline, and are
reported for third-party tools.
"""
from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.bench.tables import fmt, format_table, median, ratio

LINE = b"hearth benchmark line: the quick brown fox jumps over the lazy dog 0123456789 abcdefghijklmnopqrstu\n"
LINE_BYTES = len(LINE)  # 100
HEARTH_EVENT = re.compile(rb"^\d{4}-\d\d-\d\dT[\d:.]+Z (INFO|WARNING|ERROR) daemon: ")
SLOWDOWN_BUDGET = 1.10  # "not slowed more than 10% versus /dev/null"
RUN_TIMEOUT = 60.0      # one run; far above any healthy one
STALL_TIMEOUT = 3.0     # supervisord: the log stopped growing after the child finished
SAMPLE_INTERVAL = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

pytestmark = [
    pytest.mark.timeout(900),  # apt-get may run first; the runs take about 2 minutes
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="measures through /proc and pidfd: Linux only"),
]

FLOOD_SCRIPT = f"""\
date +%s%N > "$1"
yes '{LINE.decode().rstrip()}' 2>/dev/null | head -n "$2"
date +%s%N >> "$1"
"""

PACED_SCRIPT = f"""\
import os, sys, time
side, rate, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
with open(side, "w") as f:
    f.write("0\\n")
line, total, clock, write = {LINE!r}, int(rate * seconds), time.perf_counter, os.write
sent, in_write, start = 0, 0.0, clock()
while sent < total:
    due = min(total, int((clock() - start) * rate) + 1)
    before = clock()
    while sent < due:
        write(1, line)
        sent += 1
    in_write += clock() - before
    delay = start + sent / rate - clock()
    if delay > 0:
        time.sleep(delay)
with open(side, "a") as f:
    f.write(f"{{clock() - start}} {{in_write}}\\n")
"""


@dataclass(frozen=True)
class Profile:
    """One emitter: how many lines it writes and how to start it."""

    name: str
    title: str
    lines: int
    argv: Callable[[Path, Path], list[str]]  # (scripts directory, side file) -> argv
    repeats: int
    rate: float | None = None                # lines/s, for paced emitters


def flood(lines: int) -> Profile:
    return Profile("flood", f"flood: yes | head -n {lines:,} ({LINE_BYTES}-byte lines), flat out", lines,
                   lambda scripts, side: ["/bin/sh", str(scripts / "flood.sh"), str(side), str(lines)], repeats=5)


def paced(rate: int, seconds: float) -> Profile:
    return Profile(f"paced {rate // 1000}k", f"paced: Python child, {rate:,} lines/s for {seconds:g} s, "
                   "one write(2) per line", int(rate * seconds),
                   lambda scripts, side: [sys.executable, str(scripts / "paced.py"), str(side), str(rate),
                                          str(seconds)], repeats=3, rate=rate)


PROFILES = [flood(5_000_000), paced(20_000, 2.0), paced(200_000, 1.5)]


def read_side(side: Path) -> tuple[float | None, float | None]:
    """(the child's emitting seconds, seconds inside write) from its side file; None while unfinished."""
    try:
        first, second = side.read_text().split("\n")[:2]
        if " " in second:  # paced: "elapsed in_write"
            elapsed, in_write = second.split()
            return float(elapsed), float(in_write)
        return (int(second) - int(first)) / 1e9, None  # flood: two `date +%s%N`
    except (OSError, ValueError):
        return None, None


# -- setups: the baselines, hearth and the third-party supervisors ----------------

@dataclass(frozen=True)
class Setup:
    """One way of running an emitter; `start(argv, log, workdir)` returns the process to watch."""

    name: str
    kind: str  # baseline | hearth | third-party
    start: Callable[[list[str], Path, Path], subprocess.Popen]
    exits_with_child: bool = True
    writes_log: bool = True


def _popen(argv: list[str], workdir: Path, stdout=None) -> subprocess.Popen:
    """stdin from /dev/null (Debian's daemon gives a child a pty when stdin is a tty); diagnostics to a file."""
    with open(workdir / "diagnostics", "ab") as diagnostics:
        return subprocess.Popen(argv, cwd=workdir, stdin=subprocess.DEVNULL,
                                stdout=diagnostics if stdout is None else stdout, stderr=diagnostics)


def _to_devnull(argv: list[str], log: Path, workdir: Path) -> subprocess.Popen:
    return _popen(argv, workdir, stdout=subprocess.DEVNULL)


def _to_file(argv: list[str], log: Path, workdir: Path) -> subprocess.Popen:
    with open(log, "ab") as out:  # O_APPEND, as every supervisor here opens its log
        return _popen(argv, workdir, stdout=out)


def _hearth(argv: list[str], log: Path, workdir: Path) -> subprocess.Popen:
    return _popen([sys.executable, "-m", "services.cli", "daemon", "--foreground", "-o", str(log), "--", *argv],
                  workdir)


def _debian_daemon(path: str):
    # --foreground keeps daemon our child. It then also copies the client's output
    # to its own stdout, here /dev/null: measured no slower than detached mode.
    # -N: ignore /etc/daemon.conf.
    def start(argv: list[str], log: Path, workdir: Path) -> subprocess.Popen:
        return _popen([path, "-N", "--foreground", f"--output={log}", "--", *argv], workdir,
                      stdout=subprocess.DEVNULL)
    return start


def _supervisord(path: str):
    def start(argv: list[str], log: Path, workdir: Path) -> subprocess.Popen:
        conf = workdir / "supervisord.conf"
        as_root = "user=root\n" if os.geteuid() == 0 else ""  # instead of a CRIT warning
        conf.write_text(
            f"[supervisord]\nnodaemon=true\n{as_root}logfile={workdir / 'supervisord.log'}\n"
            f"pidfile={workdir / 'supervisord.pid'}\nchildlogdir={workdir}\n\n"
            f"[program:emitter]\ncommand={subprocess.list2cmdline(argv)}\n"
            "autostart=true\nautorestart=false\nstartsecs=0\nstartretries=0\nredirect_stderr=true\n"
            f"stdout_logfile={log}\nstdout_logfile_maxbytes=0\nstdout_logfile_backups=0\n")
        return _popen([path, "-n", "-c", str(conf)], workdir)
    return start


# -- one measured run ---------------------------------------------------------------

@dataclass
class Run:
    """What one run of one emitter under one setup measured, and whether its log came out whole."""

    child_s: float | None           # the child's own emitting time
    end_to_end_s: float             # launch until the supervisor exited (supervisord: until the log was whole)
    in_write_s: float | None        # paced child: its time inside write(2)
    cpu_s: float | None             # supervising process, from the child's start to the end
    cpu_window_s: float | None      # the wall time that CPU was counted over
    peak_kib: int | None
    intact: int                     # log lines equal to LINE
    own: int                        # hearth's own event lines
    stray: int                      # any other line: split, merged or foreign
    problem: str = ""               # why the run is not complete, if it is not


class Sampler(threading.Thread):
    """Every 20 ms: the watched process's peak RSS, and its CPU time when the child first shows up."""

    def __init__(self, pid: int, side: Path):
        super().__init__(daemon=True)
        self.pid, self.side = pid, side
        self.peak_kib = 0
        self.child_seen: tuple[float, float | None] | None = None  # (perf_counter, CPU seconds)
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(SAMPLE_INTERVAL):
            self.sample()

    def sample(self) -> None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return
        for line in status.splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                self.peak_kib = max(self.peak_kib, int(line.split()[1]))
        if self.child_seen is None and self.side.exists():
            self.child_seen = time.perf_counter(), cpu_seconds(self.pid)

    def stop(self) -> None:
        self.sample()
        self._stopped.set()
        self.join()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of the process itself, not its children; still readable while it is a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def wait_exit(pid: int, timeout: float) -> bool:
    """Wait for the process to exit without reaping it, so its CPU times stay readable."""
    fd = os.pidfd_open(pid)
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def wait_whole_log(log: Path, size: int, side: Path) -> bool:
    """Poll until the log holds `size` bytes; give up once it stalls after the child finished."""
    deadline = time.monotonic() + RUN_TIMEOUT
    last_size, last_growth = -1, time.monotonic()
    while time.monotonic() < deadline:
        current = log.stat().st_size if log.exists() else 0
        if current >= size:
            return True
        if current != last_size:
            last_size, last_growth = current, time.monotonic()
        elif read_side(side)[0] is not None and time.monotonic() - last_growth > STALL_TIMEOUT:
            return False
        time.sleep(0.005)
    return False


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


def count_lines(log: Path) -> tuple[int, int, int]:
    """(lines equal to LINE, hearth event lines, other lines), in 8 MiB pieces cut at newlines.

    bytes.count finds the intact lines fast; only a piece holding anything else is split.
    """
    intact = own = stray = 0
    rest = b""
    with open(log, "rb") as handle:
        while chunk := handle.read(8 << 20):
            chunk = rest + chunk
            cut = chunk.rfind(b"\n") + 1
            chunk, rest = chunk[:cut], chunk[cut:]
            found = chunk.count(LINE)
            if found * LINE_BYTES == len(chunk):
                intact += found
                continue
            for line in chunk.split(b"\n")[:-1]:
                if line + b"\n" == LINE:
                    intact += 1
                elif HEARTH_EVENT.match(line):
                    own += 1
                else:
                    stray += 1
    return intact, own, stray + bool(rest)


def measure(setup: Setup, profile: Profile, scripts: Path, scratch: Path) -> Run:
    slug = re.sub(r"\W+", "-", f"{profile.name}-{setup.name}").strip("-")
    workdir = Path(tempfile.mkdtemp(prefix=f"{slug}-", dir=scratch))
    log, side = workdir / "out.log", workdir / "child-times"
    started = time.perf_counter()
    process = setup.start(profile.argv(scripts, side), log, workdir)
    sampler = Sampler(process.pid, side)
    sampler.start()
    try:
        if setup.exits_with_child:
            finished = wait_exit(process.pid, RUN_TIMEOUT)
        else:
            finished = wait_whole_log(log, profile.lines * LINE_BYTES, side)
        ended = time.perf_counter()
        cpu_end = cpu_seconds(process.pid)
    finally:
        sampler.stop()
        stop(process)
    child_s, in_write_s = read_side(side)
    if not setup.writes_log:
        intact, own, stray = profile.lines, 0, 0
    else:
        intact, own, stray = count_lines(log) if log.exists() else (0, 0, 0)
    cpu = window = None
    if setup.kind != "baseline" and cpu_end is not None and sampler.child_seen and sampler.child_seen[1] is not None:
        cpu, window = cpu_end - sampler.child_seen[1], ended - sampler.child_seen[0]
    problems = [] if finished else [f"gave up after {ended - started:.0f} s"]
    if intact != profile.lines:
        problems.append(f"{profile.lines - intact:,} of {profile.lines:,} lines missing")
    if stray:
        problems.append(f"{stray:,} stray lines")
    if child_s is None:
        problems.append("the child did not finish")
    if problems:
        problems.append(f"files kept in {workdir}")
    else:
        shutil.rmtree(workdir)
    return Run(child_s, ended - started, in_write_s, cpu, window,
               sampler.peak_kib if setup.kind != "baseline" else None, intact, own, stray, "; ".join(problems))


# -- the report ----------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """The medians of one setup's runs under one profile."""

    setup: Setup
    profile: Profile
    runs: list[Run]

    def median(self, value: Callable[[Run], float | None]) -> float | None:
        return median(value(run) for run in self.runs)

    @property
    def child_s(self) -> float | None:
        return self.median(lambda r: r.child_s)

    @property
    def spread(self) -> float | None:
        """Half the range of the child's times, as a share of their median: how far to trust a cell."""
        times = [run.child_s for run in self.runs if run.child_s is not None]
        return (max(times) - min(times)) / 2 / self.child_s if times and self.child_s else None

    @property
    def lines_per_s(self) -> float | None:
        return self.profile.lines / self.child_s if self.child_s else None

    @property
    def cpu_share(self) -> float | None:
        return self.median(lambda r: r.cpu_s / r.cpu_window_s if r.cpu_s is not None and r.cpu_window_s else None)

    @property
    def peak_mib(self) -> float | None:
        peak = self.median(lambda r: r.peak_kib)
        return None if peak is None else peak / 1024

    @property
    def complete(self) -> bool:
        return not any(run.problem for run in self.runs)

    @property
    def log(self) -> str:
        if not self.setup.writes_log:
            return "(none)"
        if not self.complete:
            return "; ".join(f"run {i}: {run.problem}" for i, run in enumerate(self.runs, 1) if run.problem)
        own = sorted({run.own for run in self.runs})
        return f"all {self.profile.lines:,}" + (f" +{'/'.join(map(str, own))} wrapper" if own != [0] else "")


def write_overhead(row: Row, base: Row) -> float | None:
    """Extra share of the run the paced child spent inside write(2), versus writing to /dev/null."""
    mine, theirs = row.median(lambda r: r.in_write_s), base.median(lambda r: r.in_write_s)
    return None if mine is None or theirs is None or not base.child_s else (mine - theirs) / base.child_s


def profile_table(rows: list[Row]) -> str:
    base, profile = rows[0], rows[0].profile  # rows[0] is /dev/null
    header = ["setup", "child s", "±", "lines/s"] + ([] if profile.rate else ["MB/s"]) + ["vs /dev/null"]
    header += ["write µs/line", "+write %"] if profile.rate else []
    header += ["end-to-end s"] + ([] if profile.rate else ["wrapper CPU s"]) + ["CPU %", "peak RSS MiB", "log lines"]
    body = []
    for row in rows:
        rate = row.lines_per_s
        cells = [row.setup.name, fmt(row.child_s, ".3f"), fmt(row.spread and row.spread * 100, ".0f", "%"),
                 fmt(rate, ",.0f")]
        cells += [] if profile.rate else [fmt(rate and rate * LINE_BYTES / 1e6, ".1f")]
        cells += [fmt(ratio(row.child_s, base.child_s), ".2f", "x")]
        if profile.rate:
            in_write, overhead = row.median(lambda r: r.in_write_s), write_overhead(row, base)
            cells += [fmt(in_write and in_write / profile.lines * 1e6, ".2f"),
                      fmt(overhead and overhead * 100, "+.1f", "%")]
        cells += [fmt(row.median(lambda r: r.end_to_end_s), ".2f")]
        cells += [] if profile.rate else [fmt(row.median(lambda r: r.cpu_s), ".2f")]
        cells += [fmt(row.cpu_share and row.cpu_share * 100, ".0f"), fmt(row.peak_mib, ".1f"), row.log]
        body.append(cells)
    return format_table(f"{profile.title}; median of {profile.repeats} runs, ± half their range", header, body)


def comparison_table(results: list[list[Row]]) -> str:
    """hearth / each third-party tool: above 1x hearth is faster (lines/s) or uses more (CPU, RSS)."""
    setups = [row.setup for row in results[0]]
    hearth = next(i for i, setup in enumerate(setups) if setup.kind == "hearth")
    others = [i for i, setup in enumerate(setups) if setup.kind == "third-party"]
    metrics: list[tuple[str, Callable[[int], float | None]]] = []
    for rows in results:
        if rows[0].profile.rate is None:  # a paced child runs at its rate whatever writes its log
            metrics.append((f"{rows[0].profile.name} lines/s", lambda i, rows=rows: rows[i].lines_per_s))
        metrics.append((f"{rows[0].profile.name} wrapper CPU %", lambda i, rows=rows: rows[i].cpu_share))
    metrics.append(("peak RSS (all runs)", lambda i: median(rows[i].peak_mib for rows in results)))
    body = [[name] + [fmt(ratio(value(hearth), value(i)), ".2f", "x") for i in others] for name, value in metrics]
    return format_table("hearth / other (lines/s above 1x: hearth is faster; CPU and RSS above 1x: hearth uses more)",
                        [""] + [f"hearth / {setups[i].name}" for i in others] + [""], [cells + [""] for cells in body])


def verdicts(results: list[list[Row]]) -> str:
    lines = [f"within {SLOWDOWN_BUDGET - 1:.0%} of /dev/null? (judged on the child's own time; a paced child "
             "busy between lines would also lose its +write %)"]
    for rows in results:
        base = rows[0]
        for row in rows[1:]:
            slowdown = ratio(row.child_s, base.child_s)
            if slowdown is None:
                lines.append(f"  {row.profile.name:10} {row.setup.name:14} no complete run")
                continue
            overhead = write_overhead(row, base)
            extra = "" if overhead is None else f"; {overhead:+.1%} of its time in write(2)"
            lines.append(f"  {row.profile.name:10} {row.setup.name:14} "
                         f"{'yes' if slowdown <= SLOWDOWN_BUDGET else 'NO ':3}  {slowdown:.2f}x at "
                         f"{row.lines_per_s:,.0f} lines/s ({row.lines_per_s * LINE_BYTES / 1e6:.1f} MB/s){extra}")
    return "\n".join(lines)


def report(results: list[list[Row]], tools: list, seconds: float) -> str:
    found = ", ".join(f"{t.name} {t.version}" if t.path else f"{t.name} SKIPPED ({t.reason})" for t in tools)
    parts = [f"== log throughput through the supervisor, {seconds:.0f} s: {os.cpu_count()} CPUs, Linux "
             f"{os.uname().release}, Python {sys.version.split()[0]}\n   {found}\n"
             "   child s: the child's own time; CPU %, peak RSS: the supervising process (wrapper), not the child\n"
             "   write µs/line, +write %: the paced child's time in write(2), and its extra share of the run "
             "versus /dev/null"]
    parts += [profile_table(rows) for rows in results]
    if any(row.setup.kind == "third-party" for row in results[0]):
        parts.append(comparison_table(results))
    parts.append(verdicts(results))
    return "\n" + "\n\n".join(parts) + "\n"


# -- the benchmark -------------------------------------------------------------------

def test_log_throughput(tmp_path: Path, debian_daemon, supervisord) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "flood.sh").write_text(FLOOD_SCRIPT)
    (scripts / "paced.py").write_text(PACED_SCRIPT)
    setups = [Setup("/dev/null", "baseline", _to_devnull, writes_log=False),
              Setup("plain file", "baseline", _to_file),
              Setup("hearth", "hearth", _hearth)]
    tools = [debian_daemon, supervisord]
    if debian_daemon.path:
        setups.append(Setup(debian_daemon.name, "third-party", _debian_daemon(debian_daemon.path)))
    if supervisord.path:
        setups.append(Setup(supervisord.name, "third-party", _supervisord(supervisord.path), exits_with_child=False))
    for tool in tools:
        if tool.path is None:
            print(f"\nbench: {tool.name} column skipped: {tool.reason}")

    began = time.monotonic()
    runs: dict[tuple[str, str], list[Run]] = {}
    for profile in PROFILES:
        for _ in range(profile.repeats):
            for setup in setups:  # interleaved, so drift in the machine spreads over every row
                runs.setdefault((profile.name, setup.name), []).append(measure(setup, profile, scripts, tmp_path))
    results = [[Row(setup, profile, runs[profile.name, setup.name]) for setup in setups] for profile in PROFILES]
    print(report(results, tools, time.monotonic() - began))

    theirs = [f"{row.profile.name} / {row.setup.name}: {row.log}" for rows in results for row in rows
              if row.setup.kind == "third-party" and not row.complete]
    if theirs:
        print("third-party tools lost or mangled lines (reported, not failed):\n  " + "\n  ".join(theirs))
    ours = [f"{row.profile.name} / {row.setup.name}: {row.log}" for rows in results for row in rows
            if row.setup.kind != "third-party" and not row.complete]
    assert not ours, "lines lost or runs unfinished:\n" + "\n".join(ours)
