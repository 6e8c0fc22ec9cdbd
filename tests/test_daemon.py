"""`hearth daemon`, our daemon(8): real processes, real signals, real files, no mocks."""
from __future__ import annotations

import json
import os
import pwd
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from services.core.errors import CommandError
from services.rc.pidfile import pidfile_status
from services.rc.spawn import lookup_user
from services.rc.state import read_state

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
DAEMON = [PY, "-m", "services.cli", "daemon"]
WRAPPER_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARNING|ERROR) daemon: ")

pytestmark = pytest.mark.timeout(60)


# -- helpers -------------------------------------------------------------------

def alive(pid: int) -> bool:
    """True for a live process (a zombie nobody reaped yet counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def started_at(pid: int) -> str | None:
    """A process's start time (field 22 of /proc/PID/stat): with the pid, its identity."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (FileNotFoundError, IndexError):
        return None


def wait_for(predicate, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def py(code: str, *args: str) -> list[str]:
    """A child command: a small Python program."""
    return [PY, "-c", textwrap.dedent(code), *args]


class Service:
    """The files of one wrapper under test, and the processes to clean up after it."""

    def __init__(self, directory: Path, name: str = "svc"):
        self.pidfile = directory / f"{name}.pid"
        self.child_pidfile = directory / f"{name}.child.pid"
        self.log = directory / f"{name}.log"
        self.seen: dict[int, str] = {}  # pid -> its start time, so cleanup never hits a reused pid

    def flags(self) -> list[str]:
        return ["-P", str(self.pidfile), "-p", str(self.child_pidfile), "-o", str(self.log)]

    def run(self, *args: str, timeout: float = 20, **kwargs) -> subprocess.CompletedProcess:
        """Run `hearth daemon ARGS` to completion (detached starts return once the wrapper is up)."""
        kwargs.setdefault("capture_output", True)
        result = subprocess.run([*DAEMON, *args], cwd=ROOT, text=True, timeout=timeout, **kwargs)
        self.remember()
        return result

    def start(self, *args: str, command: list[str]) -> tuple[int, int]:
        """Start detached (-f) with this service's files; return (wrapper pid, child pid)."""
        result = self.run("-f", *self.flags(), *args, "--", *command)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        return self.wrapper_pid(), self.child_pid()

    def remember(self, pid: int | None = None) -> None:
        pids = [pid] if pid else [pidfile_status(path).pid for path in (self.pidfile, self.child_pidfile)]
        for pid in filter(None, pids):
            if pid not in self.seen and started_at(pid):
                self.seen[pid] = started_at(pid)

    def wrapper_pid(self) -> int:
        status = pidfile_status(self.pidfile)
        assert status.running, status
        return status.pid

    def child_pid(self) -> int | None:
        pid = pidfile_status(self.child_pidfile).pid
        self.remember(pid)
        return pid

    def state(self) -> dict:
        return read_state(self.pidfile) or {}

    def log_text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def cleanup(self) -> None:
        self.remember()
        for pid, start in self.seen.items():
            if started_at(pid) == start and alive(pid):
                for kill in (os.killpg, os.kill):
                    try:
                        kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass


@pytest.fixture
def daemon_service(tmp_path):
    service = Service(tmp_path)
    yield service
    service.cleanup()


def stop(service: Service, wrapper: int, timeout: float = 5.0) -> None:
    os.kill(wrapper, signal.SIGTERM)
    wait_for(lambda: not alive(wrapper), timeout, "the wrapper to exit")


# -- tests ---------------------------------------------------------------------

def test_start_detached_capture_output_and_stop(daemon_service, tmp_path):
    s = daemon_service
    child_code = """
        import sys, time
        print("to stdout", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        time.sleep(60)
    """
    # Without -f the wrapper keeps the caller's stdout/stderr (daemon(8)), so use files here.
    with open(tmp_path / "out", "w") as out:
        began = time.monotonic()
        result = s.run(*s.flags(), "-t", "web", "--", *py(child_code), capture_output=False,
                       stdout=out, stderr=out)
    assert result.returncode == 0, (tmp_path / "out").read_text()
    assert time.monotonic() - began < 5
    # The caller returned only once the wrapper held both locks and wrote both pids.
    wrapper, child = s.wrapper_pid(), s.child_pid()
    assert pidfile_status(s.child_pidfile).running
    assert alive(wrapper) and alive(child)
    assert os.getpgid(child) == child and os.getsid(child) == child  # own session and group
    assert os.getsid(wrapper) != os.getsid(0)                        # detached from ours
    assert "hearth: web[" in Path(f"/proc/{wrapper}/cmdline").read_text()
    wait_for(lambda: "to stderr" in s.log_text(), what="child output in the log")
    assert "to stdout\n" in s.log_text()
    assert f"INFO daemon: web: started child pid {child}" in s.log_text()
    state = s.state()
    assert state["state"] == "running"
    assert (state["name"], state["supervisor_pid"], state["child_pid"]) == ("web", wrapper, child)
    assert state["log"] == str(s.log)
    assert stat.S_IMODE(s.log.stat().st_mode) & 0o137 == 0   # 0640 before the umask

    stop(s, wrapper)
    wait_for(lambda: not alive(child), 2, "the child to exit")
    assert not s.pidfile.exists() and not s.child_pidfile.exists()
    state = s.state()
    assert state["state"] == "stopped" and state["child_pid"] is None
    assert "SIGTERM" in state["reason"]
    assert (tmp_path / "out").read_text() == ""


def test_killed_child_is_restarted(daemon_service):
    s = daemon_service
    wrapper, child = s.start("-r", command=py("import time; time.sleep(60)"))
    os.kill(child, signal.SIGKILL)
    began = time.monotonic()
    new_child = wait_for(lambda: (s.child_pid() or child) != child and s.child_pid(), 2.5, "a new child")
    assert time.monotonic() - began < 2
    assert alive(new_child)
    wait_for(lambda: s.state().get("child_pid") == new_child, 1, "the state file to show the new child")
    state = s.state()
    assert state["restarts"] == 1 and state["state"] == "running"
    assert state["last_exit"] == "killed by SIGKILL"
    assert f"child pid {child} killed by SIGKILL after " in s.log_text()
    assert "restarting in 1 s (restart 1)" in s.log_text()
    title = f"hearth: {os.path.basename(PY)}[{new_child}] (daemon)"  # no -t: the command's name
    assert Path(f"/proc/{wrapper}/cmdline").read_text().startswith(title)
    stop(s, wrapper)


def test_backoff_grows_caps_and_gives_up(daemon_service, tmp_path):
    s = daemon_service
    starts = tmp_path / "starts"
    child = py("import sys, time; open(sys.argv[1], 'a').write(repr(time.time()) + '\\n'); sys.exit(1)",
               str(starts))
    result = s.run("--foreground", *s.flags(), "-R", "0.2", "--backoff-max", "0.8", "-C", "4",
                   "--restart-window", "60", "--", *child)
    assert result.returncode == 1, result.stderr
    times = [float(line) for line in starts.read_text().split()]
    assert len(times) == 5  # the first start and 4 restarts
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert 0.15 < gaps[0] < 0.6, gaps
    assert gaps[1] > gaps[0] * 1.5 and gaps[2] > gaps[1] * 1.5, gaps  # doubling
    assert abs(gaps[3] - gaps[2]) < 0.3 and gaps[3] < 1.3, gaps       # capped at 0.8
    log = s.log_text()
    for number, delay in enumerate(["0.2", "0.4", "0.8", "0.8"], start=1):
        assert "exited 1 after " in log and f"restarting in {delay} s (restart {number})" in log
    assert "ERROR daemon: " in log and "giving up after 4 restarts in 60 s; last exit 1" in log
    state = s.state()
    assert (state["state"], state["restarts"], state["last_exit"]) == ("gave-up", 4, "exit 1")
    assert "gave up after 4 restarts" in state["reason"]
    assert not s.pidfile.exists() and not s.child_pidfile.exists()


@pytest.mark.parametrize("code", [78, 2])
def test_misconfigured_child_is_not_restarted(daemon_service, tmp_path, code):
    s = daemon_service
    starts = tmp_path / "starts"
    result = s.run("--foreground", *s.flags(), "-R", "0.1", "--",
                   "sh", "-c", f'echo start >> "{starts}"; exit {code}')
    assert result.returncode == 1, result.stderr
    assert starts.read_text() == "start\n"
    state = s.state()
    assert state["state"] == "exited" and state["last_exit"] == f"exit {code}"
    assert "configuration" in state["reason"]
    assert f"ERROR daemon: sh: child exited {code} (misconfigured): not restarting" in s.log_text()


def test_no_restart_exit_codes_are_configurable(daemon_service, tmp_path):
    s = daemon_service
    result = s.run("--foreground", *s.flags(), "-R", "0.1", "-C", "1", "--no-restart-exit", "",
                   "--", "sh", "-c", "exit 78")
    assert result.returncode == 1
    assert s.state()["state"] == "gave-up" and s.state()["restarts"] == 1


def test_killed_wrapper_leaves_stale_pidfiles_and_child_dies(daemon_service):
    s = daemon_service
    wrapper, child = s.start("-r", command=py("import time; time.sleep(60)"))
    os.kill(wrapper, signal.SIGKILL)
    wait_for(lambda: not alive(wrapper), 3, "the wrapper to die")
    status = pidfile_status(s.pidfile)
    assert (status.pid, status.running, status.stale) == (wrapper, False, True)
    assert pidfile_status(s.child_pidfile).stale
    wait_for(lambda: not alive(child), 2, "the orphaned child to get its parent-death SIGTERM")

    wrapper2, child2 = s.start("-r", command=py("import time; time.sleep(60)"))
    assert wrapper2 != wrapper and child2 != child and alive(child2)
    state = s.state()
    assert (state["state"], state["supervisor_pid"], state["restarts"]) == ("running", wrapper2, 0)
    assert pidfile_status(s.pidfile).running
    stop(s, wrapper2)


def test_second_start_reports_already_running(daemon_service):
    s = daemon_service
    wrapper, child = s.start(command=py("import time; time.sleep(60)"))
    for _ in range(50):  # probing must not disturb the owner
        assert pidfile_status(s.pidfile).running
    result = s.run("-f", *s.flags(), "--", "sleep", "1")
    assert result.returncode == 3
    assert result.stderr == f"hearth daemon: already running as pid {wrapper} ({s.pidfile})\n"
    assert s.wrapper_pid() == wrapper and s.child_pid() == child and alive(child)
    stop(s, wrapper)


def test_sighup_reopens_log_without_splitting_or_losing_lines(daemon_service):
    s = daemon_service
    count, flags = 30000, s.log.parent
    # Numbered lines in five parts cut mid-line, each written in random-sized pieces (so most writes end
    # mid-line too); the writer starts part k once the test has rotated the log for the k-th time, so every
    # rotation falls while it writes, however slow the machine.
    writer = f"""
        import os, pathlib, random, time
        flags = pathlib.Path({str(flags)!r})
        data = b"".join(b"n=%d;\\n" % i for i in range({count}))
        rnd = random.Random(7)
        cuts = sorted(rnd.randrange(len(data)) for _ in range(4))
        for k, (start, end) in enumerate(zip([0, *cuts], [*cuts, len(data)])):
            deadline = time.time() + 60
            while k and not (flags / f"go{{k}}").exists() and time.time() < deadline:
                time.sleep(0.01)
            pos = start
            while pos < end:
                size = min(rnd.randint(1, 3000), end - pos)
                os.write(1, data[pos:pos + size])
                pos += size
            (flags / f"wrote{{k}}").touch()
    """
    wrapper, _ = s.start("-H", command=py(writer))
    wait_for(lambda: "n=" in s.log_text(), 30, "the first lines")
    rotated = []
    for number in range(1, 5):
        wait_for(lambda: (flags / f"wrote{number - 1}").exists(), 30, f"part {number - 1} written")
        target = s.log.with_name(f"svc.log.{number}")
        s.log.rename(target)
        os.kill(wrapper, signal.SIGHUP)
        rotated.append(target)
        wait_for(s.log.exists, 30, "the log reopened")
        (flags / f"go{number}").touch()
    wait_for(lambda: s.state().get("state") == "exited", 30, "the writer to finish")
    numbers, files_with_numbers = [], 0
    for path in [*rotated, s.log]:
        found = 0
        for line in path.read_text().splitlines():
            match = re.fullmatch(r"n=(\d+);", line)
            if match:
                numbers.append(int(match.group(1)))
                found += 1
            else:
                assert WRAPPER_LINE.match(line), f"split or foreign line in {path.name}: {line!r}"
        files_with_numbers += bool(found)
    assert numbers == list(range(count))
    assert files_with_numbers >= 3
    assert "reopened log file on SIGHUP" in s.log_text()


def test_fast_writer_is_not_slowed_down(daemon_service, tmp_path):
    s = daemon_service
    count, timing = 60000, tmp_path / "timing"
    writer = f"""
        import sys, time
        began = time.perf_counter()
        for i in range({count}):
            print("line", i, flush=True)
        open(sys.argv[1], "w").write(str(time.perf_counter() - began))
    """
    result = s.run("--foreground", *s.flags(), "--", *py(writer, str(timing)))
    assert result.returncode == 0, result.stderr
    elapsed = float(timing.read_text())
    assert count / elapsed > 20000, f"{count / elapsed:.0f} lines/s"
    lines = [line for line in s.log_text().splitlines() if line.startswith("line ")]
    assert lines == [f"line {i}" for i in range(count)]


def test_stop_kills_a_child_that_ignores_sigterm(daemon_service):
    s = daemon_service
    stubborn = """
        import signal, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("ignoring SIGTERM", flush=True)
        time.sleep(60)
    """
    wrapper, child = s.start("--stop-timeout", "1", command=py(stubborn))
    wait_for(lambda: "ignoring SIGTERM" in s.log_text(), 5, "the child to install its handler")
    began = time.monotonic()
    stop(s, wrapper, timeout=5)
    took = time.monotonic() - began
    assert 0.9 < took < 3, took
    assert not alive(child)
    assert f"child pid {child} did not stop within 1 s; sent SIGKILL" in s.log_text()
    assert s.state()["state"] == "stopped" and s.state()["last_exit"] == "killed by SIGKILL"


def test_mask_and_unterminated_last_line(daemon_service):
    s = daemon_service
    child = py("""
        import sys
        print("to stdout")
        print("to stderr", file=sys.stderr)
        sys.stdout.write("no newline at the end")
    """)
    result = s.run("--foreground", *s.flags(), "-m", "1", "--", *child)
    assert result.returncode == 0, result.stderr
    log = s.log_text()
    assert "to stdout\n" in log and "to stderr" not in log
    assert "no newline at the end\n" in log
    state = s.state()
    assert state["state"] == "exited" and state["last_exit"] == "exit 0"
    assert "restarting is off" in state["reason"]


def test_env_files_reach_the_child_but_never_the_log(daemon_service, tmp_path):
    s = daemon_service
    first, second, seen = tmp_path / "first.env", tmp_path / "second.env", tmp_path / "seen.json"
    first.write_text("SECRET=s3cr3t-value\nSHARED=first\n")
    second.write_text("SHARED='second # not a comment'\nEMPTY=\n")
    child = py("""
        import json, os, sys
        json.dump({k: os.environ.get(k) for k in ("SECRET", "SHARED", "EMPTY", "PATH")}, open(sys.argv[1], "w"))
        print("child saw", len(os.environ), "variables")
    """, str(seen))
    result = s.run("--foreground", *s.flags(), "-e", str(first), "-e", str(second), "--", *child)
    assert result.returncode == 0, result.stderr
    env = json.loads(seen.read_text())
    assert env == {"SECRET": "s3cr3t-value", "SHARED": "second # not a comment", "EMPTY": "",
                   "PATH": os.environ["PATH"]}
    assert "loaded 3 variables from 2 env files" in s.log_text()
    for path in (s.log, s.pidfile.with_suffix(".state")):
        assert "s3cr3t" not in path.read_text()


@pytest.mark.parametrize("args, message", [
    (["--"], "missing command"),
    (["-m", "4", "--", "true"], "-m 4"),
    (["-R", "soon", "--", "true"], "-R soon"),
    (["--stop-timeout", "-1", "--", "true"], "--stop-timeout -1"),
    (["-C", "x", "--", "true"], "-C x"),
    (["--no-restart-exit", "2,many", "--", "true"], "--no-restart-exit"),
    (["-u", "no-such-user-here", "--", "true"], "no such user"),
    (["-e", "/nonexistent/app.env", "--", "true"], "/nonexistent/app.env"),
    (["--", "/nonexistent/bin/app"], "/nonexistent/bin/app"),
])
def test_bad_input_is_one_line_and_exit_2(daemon_service, args, message):
    s = daemon_service
    result = s.run("--foreground", *s.flags(), *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert not s.pidfile.exists() and not s.log.exists()


def test_detached_start_reports_a_child_that_cannot_start(daemon_service, tmp_path):
    s = daemon_service
    garbage = tmp_path / "not-a-program"
    garbage.write_bytes(b"\x00\x01 not an executable format")
    garbage.chmod(0o755)
    result = s.run("-f", *s.flags(), "--", str(garbage))
    assert result.returncode == 1
    assert "could not start" in result.stderr and "Exec format error" in result.stderr
    assert result.stderr.count("\n") == 1
    assert s.state()["state"] == "exited" and not s.pidfile.exists()


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="changing the child's user needs root")


@root_only
def test_user_drop_sets_identity_and_home(daemon_service):
    s = daemon_service
    nobody = pwd.getpwnam("nobody")
    report = 'echo "uid=$(id -u) gid=$(id -g) groups=$(id -G) home=$HOME user=$USER logname=$LOGNAME"'
    result = s.run("--foreground", *s.flags(), "-u", "nobody", "--", "sh", "-c", report)
    assert result.returncode == 0, result.stderr
    groups = " ".join(str(g) for g in os.getgrouplist("nobody", nobody.pw_gid))
    assert (f"uid={nobody.pw_uid} gid={nobody.pw_gid} groups={groups} home={nobody.pw_dir} "
            f"user=nobody logname=nobody") in s.log_text()
    assert s.log.stat().st_uid == 0  # the wrapper, not the child, owns the log


@root_only
def test_dropped_child_still_dies_with_its_wrapper(daemon_service):
    s = daemon_service
    wrapper, child = s.start("-u", "nobody", command=["sleep", "60"])
    assert os.stat(f"/proc/{child}").st_uid == pwd.getpwnam("nobody").pw_uid
    os.kill(wrapper, signal.SIGKILL)
    wait_for(lambda: not alive(child), 2, "the parent-death signal after the uid change")


@root_only
def test_user_change_needs_root():
    # The venv's interpreter may not be executable by nobody, so check in a forked
    # copy of this process that has dropped to nobody.
    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            try:
                lookup_user("root")
                outcome = "accepted"
            except CommandError as error:
                outcome = f"{int(error.status)} {error}"
            os.write(write_end, outcome.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read().decode()
    assert outcome == f"2 -u root: changing user needs root (running as uid {nobody.pw_uid})"
