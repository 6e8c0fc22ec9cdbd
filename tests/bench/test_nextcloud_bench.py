"""The real Nextcloud client, `nextcloudcmd` 3.7 (Debian nextcloud-desktop-cmd), syncing the interop test's
tree of 2,000 small files with hearth and with two plain WebDAV servers, in one run.

The targets, each on a free loopback port, HTTP Basic with a password, a fresh empty account per
repetition (see nextcloud_targets.py):

* hearth: `hearth up` as tests/interop/test_nextcloudcmd_sync_interop.py runs it (the front end, the
  API daemon answering status.php, capabilities and the user, the files daemon serving
  /remote.php/dav/files/USER/), a new user per repetition.
* nginx (Debian) with the dav and dav-ext modules on a plain directory, apt-installed when missing and
  we are root. status.php, capabilities and cloud/user are fixed answers in location blocks.
* `rclone serve webdav` (Debian rclone) on a plain directory, the three discovery answers as files in it.

What a plain WebDAV server cannot give, found by running the client against each:

* It gets through discovery (status.php, capabilities, cloud/user, a PROPFIND of the empty root) and
  the first sync uploads every file: MKCOL of each folder, one PUT per file (the tree is below the
  client's chunking threshold). Both servers store every byte.
* nginx as packaged cannot take part without two changes: it refuses MKCOL without a trailing slash
  (409, the client sends none) and its PUT answer has no ETag, so the client counts every upload as
  failed ("The server did not acknowledge the last chunk. (No e-tag was present)", exit 1). Here the
  MKCOL is rewritten and PUT answers carry the request id as ETag, so its run takes the client's
  success path, as hearth's does. rclone needs neither (its PUT answers carry an ETag).
* Neither keeps the client's file dates (no X-OC-Mtime; the client logs "Server does not support
  X-OC-MTime" per file), neither has file ids or permissions.
* So the re-sync cannot be like for like. Against either plain server every run after the first makes
  the same four requests hearth's no-change re-sync makes (three GETs and the root PROPFIND), then
  stops: each top-level folder comes back without oc:id, oc:permissions and a getetag (folders get
  none from either server), "Server reported no permission, ETag, file id", exit 1. Its time is
  printed as the floor of a run (client start, discovery, one listing), not as a re-sync.
* hearth makes each upload durable before it answers (the chunk flushed with syncfs, the journal
  commit with SQLite's synchronous = FULL); neither nginx nor rclone calls fsync for a PUT (strace
  shows none). The first sync's ratio includes that price.

What is measured, per target and repetition (HEARTH_BENCH_SCALE scales the file count):

* first sync: a copy of the tree (and no client journal) into the empty account, wall time of the
  `nextcloudcmd` run;
* a second run (the ETag the client noted for each folder it made changed as the files went in, so
  it lists each folder once);
* the no-change re-sync: the third run, wall time.
Requests are counted from the client's own log (one line per request), the same way for every
target. Each cell is the median of REPEATS, the targets' order rotated each round.

Timings are printed with the goals (hearth's first sync within 1.5x of the fastest plain target; the
no-change re-sync under 1 s), never asserted. For hearth, every run must exit 0 and every file must
come back through /files/USER/ with its SHA-256; the others' results are printed.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.bench.nextcloud_targets import PASSWORD, Target, hearth_target, nginx_target, rclone_target
from tests.bench.tables import fmt, format_table, median, ratio
from tests.bench.test_files_bench import nginx_with_dav
from tests.bench.test_front_throughput import MachineLoad
from tests.nextcloudcmd import SMALL_FILES, hearth_for_nextcloudcmd, local_files, nextcloudcmd, write_small_tree

SCALE = float(os.environ.get("HEARTH_BENCH_SCALE", "1"))
FILES = max(100, round(SMALL_FILES * SCALE))
REPEATS = 3
RUNS = ("first", "second", "again")   # first sync, the run that lists hearth's new folders, no change
GOAL_FIRST_VS_PLAIN, GOAL_RESYNC_S = 1.5, 1.0
REQUEST = re.compile(r'accessmanager \]:\s+\d+ "\w*" "')
FAILED = re.compile(r'with status OCC::SyncFileItem::\w*Error and error: "(.*)"$')

pytestmark = pytest.mark.timeout(1800)


@dataclass
class Run:
    seconds: float
    code: int
    requests: int
    errors: Counter


@dataclass
class Result:
    target: Target
    runs: dict[str, list[Run]] = field(default_factory=lambda: {name: [] for name in RUNS})
    problems: list[str] = field(default_factory=list)

    def median(self, run: str, what: str) -> float | None:
        return median(getattr(r, what) for r in self.runs[run])


def one_run(local: Path, url: str, user: str, log: Path) -> Run:
    result, seconds = nextcloudcmd(local, url, user, PASSWORD, log)
    output = (result.stdout + result.stderr).splitlines()
    errors = Counter(m[1] for m in map(FAILED.search, output) if m)
    return Run(seconds, result.returncode, sum(1 for line in output if REQUEST.search(line)), errors)


def repetition(result: Result, n: int, tree: Path, workdir: Path, expected: dict[str, str]) -> None:
    """Into a fresh account: the first sync, the second run, the no-change re-sync; then what arrived."""
    target = result.target
    account = target.account(n)
    local = workdir / f"laptop-{target.name}-{n}"
    shutil.copytree(tree, local)
    for name in RUNS:
        run = one_run(local, account.url, account.user, workdir / f"{target.name}-{n}.log")
        result.runs[name].append(run)
        if run.code and not (target.plain and name != "first"):
            result.problems.append(f"round {n}, {name} run exited {run.code}: {dict(run.errors) or 'no error line'}")
    held = account.holds(sorted(expected))
    wrong = sorted(path for path, digest in expected.items() if held.get(path) != digest)
    if wrong:
        result.problems.append(f"round {n}: {len(wrong)} of {len(expected)} files missing or different, "
                               f"e.g. {wrong[:3]}")


def report(results: list[Result], skipped: dict[str, str], machine: MachineLoad, seconds: float) -> str:
    by = {r.target.name: r for r in results}
    plain = [r for r in results if r.target.plain]
    fastest = min(plain, key=lambda r: r.median("first", "seconds") or float("inf"), default=None)
    client = subprocess.run(["nextcloudcmd", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    head = (f"== nextcloudcmd syncing {FILES:,} small files, {REPEATS} rounds, {seconds:.0f} s: {os.cpu_count()} "
            f"CPUs, Linux {os.uname().release}, Python {sys.version.split()[0]}, HEARTH_BENCH_SCALE={SCALE:g}\n"
            f"   client: {client} (--non-interactive --max-sync-retries 1, a fresh local copy and journal "
            f"per round)\n"
            f"   {', '.join(f'{r.target.name} {r.target.version}' for r in results)}"
            + "".join(f", {name} SKIPPED ({why})" for name, why in skipped.items()) + "\n"
            f"   machine: {machine.describe()}"
            + "".join(f"\n   {r.target.name}: {note}" for r in results for note in r.target.notes))
    versus = f"hearth vs {fastest.target.name}" if fastest else "hearth vs plain"
    rows = [("first sync (s)", "first", "seconds", ".2f"), ("first sync requests", "first", "requests", ".0f"),
            ("second run (s) *", "second", "seconds", ".2f"), ("second run requests *", "second", "requests", ".0f"),
            ("no-change re-sync (s) *", "again", "seconds", ".2f"),
            ("no-change re-sync requests *", "again", "requests", ".0f")]
    body = []
    for label, run, what, spec in rows:
        row = [label, *(fmt(r.median(run, what), spec) for r in results)]
        theirs = fastest.median(run, what) if fastest else None
        row.append(fmt(ratio(by["hearth"].median(run, what), theirs), ".2f", "x"))
        body.append(row)
    table = format_table(f"results (median of {REPEATS}; '{versus}' = hearth's figure / theirs: below 1, hearth "
                         f"is faster or asks less)", ["", *by, versus], body)
    outcomes = "\n".join(f"  {r.target.name}: " + "; ".join(outcome(r, run) for run in RUNS) for r in results)
    footnote = ("* against a plain server the second and third runs are no syncs: the client stops after the root "
                "listing (no file ids, permissions or folder ETags); each target's exit codes:")
    return "\n" + "\n\n".join([head, table, footnote + "\n" + outcomes, goals(by["hearth"], fastest)]) + "\n"


def outcome(result: Result, run: str) -> str:
    codes = Counter(r.code for r in result.runs[run])
    errors = sum((r.errors for r in result.runs[run]), Counter())
    said = ", ".join(f"{count} x {text!r}" for text, count in errors.most_common(2))
    return f"{run}: exit {', '.join(f'{code} x{count}' for code, count in sorted(codes.items()))}" + \
        (f" ({said})" if said else "")


def goals(hearth: Result, fastest: Result | None) -> str:
    first = ratio(hearth.median("first", "seconds"), fastest.median("first", "seconds") if fastest else None)
    again = hearth.median("again", "seconds")
    lines = [f"first sync within {GOAL_FIRST_VS_PLAIN:g}x of the fastest plain WebDAV target: {fmt(first, '.2f', 'x')} "
             + ("no number" if first is None else "met" if first <= GOAL_FIRST_VS_PLAIN else "MISSED"),
             f"no-change re-sync under {GOAL_RESYNC_S:g} s: {fmt(again, '.2f', ' s')} "
             + ("no number" if again is None else "met" if again < GOAL_RESYNC_S else "MISSED")]
    if FILES != SMALL_FILES:
        lines.append(f"(NOT the 2,000-file tree: {FILES:,} files, HEARTH_BENCH_SCALE={SCALE:g})")
    return "goals (printed, not asserted):\n  " + "\n  ".join(lines)


def test_nextcloud_bench(tmp_path_factory, tmp_path: Path, nginx) -> None:
    began, machine = time.monotonic(), MachineLoad()
    with hearth_for_nextcloudcmd(tmp_path_factory, "nextcloud-bench") as installation:
        targets, skipped = [hearth_target(installation)], {}
        nginx_path, why = nginx_with_dav(nginx)
        if nginx_path is None:
            skipped["nginx"] = why
        else:
            targets.append(nginx_target(tmp_path, nginx_path, REPEATS))
        if shutil.which("rclone"):
            targets.append(rclone_target(tmp_path))
        else:
            skipped["rclone"] = "rclone is not installed (Debian package rclone; .ci/run installs it)"
        tree = tmp_path / "tree"
        write_small_tree(tree, FILES)
        expected = local_files(tree)
        results = [Result(target) for target in targets]
        try:
            for n in range(REPEATS):
                for result in results[n % len(results):] + results[:n % len(results)]:
                    print(f"\nbench: round {n + 1}, {result.target.name}", flush=True)
                    repetition(result, n, tree, tmp_path, expected)
        finally:
            for target in targets:
                target.stop()
    print(report(results, skipped, machine, time.monotonic() - began))

    theirs = [f"{r.target.name}: {p}" for r in results if r.target.plain for p in r.problems]
    if theirs:
        print("what the plain servers got wrong (reported, not failed):\n  " + "\n  ".join(theirs))
    ours = results[0].problems
    assert not ours, "hearth:\n  " + "\n  ".join(ours)
