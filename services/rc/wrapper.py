"""The daemon wrapper's supervision loop: one child, its output, its restarts, its stop.

Single-threaded on purpose (preexec_fn and fork need it): one poll(2) waits on
the child's output pipe and on the signal wakeup pipe, and every decision is
taken between two waits. Signal handlers only queue the signal number, so none
is lost and none interrupts a half-done step.

The loop is the hot path when a child logs a lot, so a wake-up does as little
as it can: output is read into the OutputLog's reused buffer (no allocation),
everything the pipe holds is taken in one read and written in one write, the
child is reaped (wait4) only after a SIGCHLD (or, in case one went missing,
every MAX_WAIT seconds), and the timers are looked at only while one is set.
"""
from __future__ import annotations

import collections
import fcntl
import ctypes
import ctypes.util
import io
import logging
import math
import os
import pwd
import select
import signal
import sys
import subprocess
import time
from dataclasses import dataclass

from setproctitle import setproctitle

from .backoff import Backoff
from .outputlog import READ_SIZE, OutputLog
from .pidfile import PidFile
from .spawn import describe_exit, spawn
from .state import StateFile

PIPE_SIZE = 1024 * 1024          # Linux: a roomier pipe absorbs bursts of output
HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)
MAX_WAIT = 5.0                    # wake up now and then even if nothing happens, and check on the child
PUMP_READS = 4                    # reads per wake-up at most (about the pipe's size), then see to signals
EXIT_READS = 64                   # reads after the child exited, for what it (or a straggler) left


@dataclass(frozen=True)
class Settings:
    """What the wrapper runs and how it treats exits, as parsed from the command line."""

    name: str
    argv: list[str]
    env: dict[str, str]
    env_file_vars: int = 0  # how many came from -e files (logged as a count, never the values)
    user: pwd.struct_passwd | None = None
    mask: int = 3
    reopen_on_hup: bool = False
    restart: bool = False
    restart_delay: float = 1.0
    backoff_max: float = 60.0
    stable_after: float = 60.0
    max_restarts: int | None = None
    restart_window: float = 300.0
    stop_timeout: float = 10.0
    no_restart_exit: frozenset[int] = frozenset({2, 78})


def set_title(title: str) -> None:
    """What ps(1) shows. rc.subr's check_pidfile accepts an argv[0] of "<procname's
    basename>:", and procname is the hearth command, hence the "hearth: " prefix."""
    if sys.platform.startswith(("freebsd", "openbsd", "netbsd", "dragonfly")):
        # BSD libc prefixes the program name unless the format starts with "-".
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.setproctitle(b"-%s", title.encode())
    else:
        setproctitle(title)


def _secs(value: float) -> str:
    return f"{round(value, 3):g}"


class Wrapper:
    """Runs, watches and restarts one child until it is stopped or gives up."""

    def __init__(self, settings: Settings, log: logging.Logger, output: OutputLog | None = None,
                 child_pidfile: PidFile | None = None, state: StateFile | None = None):
        self.settings = settings
        self.output = output
        self.child_pidfile = child_pidfile
        self.state = state
        self._log = log
        self.backoff = Backoff(settings.restart_delay, settings.backoff_max, settings.stable_after,
                               settings.max_restarts, settings.restart_window)
        self.child: subprocess.Popen | None = None
        self.child_started = 0.0
        self.restarts = 0
        self.restart_at: float | None = None
        self.stopping: str | None = None
        self.stop_deadline: float | None = None
        self.exit_code: int | None = None
        self.last_exit: str | None = None
        self.reason: str | None = None
        self._signals: collections.deque[int] = collections.deque()
        self._poller = select.poll()
        self._pipe_r = self._pipe_w = -1
        self._source: io.FileIO | None = None   # the pipe's read end, for readinto
        self._child_changed = False              # a SIGCHLD came: reap
        self._next_check = 0.0                   # reap anyway from then on (a lost SIGCHLD)

    def log(self, level: int, message: str) -> None:
        self._log.log(level, "%s: %s", self.settings.name, message)

    def record(self, **changes) -> None:
        if self.state is None:
            return
        try:
            self.state.update(**changes)
        except OSError as error:
            self.log(logging.WARNING, f"cannot write state file {self.state.path}: {error.strerror}")

    def run(self, ready=lambda: None) -> int:
        """Supervise until done; `ready` is called once the first child is running (or backing off)."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self._poller.register(wake_r, select.POLLIN)
        previous = {signum: signal.signal(signum, self._queue_signal) for signum in HANDLED_SIGNALS}
        previous_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        try:
            if self.output is not None:
                self._open_pipe()
            self.record(state="starting")
            set_title(f"hearth: {self.settings.name} (daemon)")
            self._start_child()
            if self.exit_code is None:  # otherwise the caller hears why it ended at once
                ready()
            self._next_check = time.monotonic() + MAX_WAIT
            # The hot path: one pass per wake-up, so it is written out here, with locals.
            poll, monotonic, ceil, pipe_r = self._poller.poll, time.monotonic, math.ceil, self._pipe_r
            while self.exit_code is None:
                deadline = self._next_check
                if self.restart_at is not None or self.stop_deadline is not None:
                    deadline = min(t for t in (deadline, self.restart_at, self.stop_deadline) if t is not None)
                timeout = deadline - monotonic()
                for fd, _ in poll(ceil(timeout * 1000) if timeout > 0 else 0):
                    if fd == pipe_r:
                        self._pump()
                    else:
                        self._drain_wakeups(wake_r)
                if self._signals:
                    self._handle_signals()
                if self._child_changed or monotonic() >= self._next_check:
                    self._reap()
                if self.restart_at is not None or self.stop_deadline is not None:
                    self._handle_timers()
            return self.exit_code
        except Exception as error:  # a bug or an unusable system: say so, leave no child behind
            self._log.exception("%s: wrapper failed", self.settings.name)
            if self.child is not None:
                self._signal_child(signal.SIGTERM)
            self._finish("exited", 1, f"the wrapper failed: {error!r}")
            return 1
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if self._source is not None:
                self._source.close()  # closefd=False: the fd is closed below
            for fd in (wake_r, wake_w, self._pipe_r, self._pipe_w):
                if fd >= 0:
                    os.close(fd)

    # -- events ---------------------------------------------------------------

    def _queue_signal(self, signum: int, frame) -> None:
        self._signals.append(signum)

    def _open_pipe(self) -> None:
        self._pipe_r, self._pipe_w = os.pipe()
        os.set_blocking(self._pipe_r, False)
        if hasattr(fcntl, "F_SETPIPE_SZ"):
            try:
                fcntl.fcntl(self._pipe_w, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass  # above /proc/sys/fs/pipe-max-size: the default pipe works too
        self._source = io.FileIO(self._pipe_r, "r", closefd=False)
        self._poller.register(self._pipe_r, select.POLLIN)

    @staticmethod
    def _drain_wakeups(wake_r: int) -> None:
        """Empty the signal wakeup pipe (the handlers have queued the signals themselves)."""
        try:
            while os.read(wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def _pump(self, max_reads: int = PUMP_READS, until_empty: bool = False) -> None:
        """Copy what the child wrote into the log file, whole lines only.

        A read shorter than READ_SIZE took all the pipe held, so it is the last
        one (a wake-up is one read and one write), unless `until_empty` asks to
        read on until the pipe is empty.
        """
        output, source = self.output, self._source
        count = output.read_from(source)
        if count and (count >= READ_SIZE or until_empty):
            for _ in range(max_reads - 1):
                count = output.read_from(source)
                if not count or (count < READ_SIZE and not until_empty):
                    break
        if output.lost_bytes and output.last_write_ok:
            lost, self.output.lost_bytes = self.output.lost_bytes, 0
            self.log(logging.WARNING, f"lost {lost} bytes of output: {self.output.last_error}")

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.popleft()
            if signum == signal.SIGCHLD:
                self._child_changed = True
            elif signum in (signal.SIGTERM, signal.SIGINT):
                self._stop(signal.Signals(signum).name)
            elif signum == signal.SIGHUP:
                self._reopen_log()

    def _reopen_log(self) -> None:
        if self.output is None or not self.settings.reopen_on_hup:
            self.log(logging.INFO, "SIGHUP ignored (start with -o FILE -H to reopen the log on SIGHUP)")
            return
        try:
            self.output.reopen()
        except OSError as error:
            self.log(logging.ERROR, f"cannot reopen log {self.output.path}: {error.strerror}; "
                                    "still writing to the old file")
            return
        self.log(logging.INFO, "reopened log file on SIGHUP")

    def _reap(self) -> None:
        self._child_changed = False
        self._next_check = time.monotonic() + MAX_WAIT
        if self.child is None or self.child.poll() is None:
            return
        child, self.child = self.child, None
        if self.output is not None:  # everything it wrote before dying, then its unfinished line
            self._pump(max_reads=EXIT_READS, until_empty=True)
            self.output.flush_partial()
        if self.child_pidfile is not None:
            self.child_pidfile.write(None)
        uptime = time.monotonic() - self.child_started
        self._after_exit(child.pid, child.returncode, describe_exit(child.returncode), uptime)

    def _handle_timers(self) -> None:
        now = time.monotonic()
        if self.stop_deadline is not None and now >= self.stop_deadline and self.child is not None:
            self.stop_deadline = None
            self.log(logging.WARNING, f"child pid {self.child.pid} did not stop within "
                                      f"{_secs(self.settings.stop_timeout)} s; sent SIGKILL")
            self._signal_child(signal.SIGKILL)
        if self.restart_at is not None and now >= self.restart_at and self.exit_code is None:
            self.restart_at = None
            self.restarts += 1
            self.backoff.record_restart(now)
            self._start_child()

    # -- the child's life -------------------------------------------------------

    def _start_child(self) -> None:
        s = self.settings
        out = err = None
        if self.output is not None:
            out = self._pipe_w if s.mask & 1 else subprocess.DEVNULL
            err = self._pipe_w if s.mask & 2 else subprocess.DEVNULL
        self.child_started = time.monotonic()
        try:
            self.child = spawn(s.argv, s.env, s.user, out, err)
        except (OSError, subprocess.SubprocessError) as error:
            self._after_exit(None, None, f"could not start: {error}", 0.0)
            return
        pid = self.child.pid
        if self.child_pidfile is not None:
            self.child_pidfile.write(pid)
        # "hearth: …" like FreeBSD's "daemon: …": rc.subr's check_pidfile accepts
        # an argv[0] of "<basename of procname>:", and procname is the hearth command.
        set_title(f"hearth: {s.name}[{pid}] (daemon)")
        self.log(logging.INFO, f"started child pid {pid}")
        self.record(state="running", child_pid=pid, child_started_at=time.time(),
                    restarts=self.restarts, next_start_at=None)

    def _after_exit(self, pid: int | None, returncode: int | None, how: str, uptime: float) -> None:
        """Decide what follows a child's exit (or failed start): stop, give up or restart."""
        s = self.settings
        who = f"child pid {pid}" if pid is not None else "child"
        what = f"exited {returncode}" if returncode is not None and returncode >= 0 else how
        ran = f"{what} after {uptime:.1f} s" if pid is not None else what
        self.last_exit = how
        if self.stopping:
            if pid is not None:  # helpers left in its group had the same SIGTERM; don't let them linger
                self._kill_group(pid, signal.SIGKILL)
            self.log(logging.INFO, f"{who} {ran}; stopped")
            return self._finish("stopped", 0, f"stopped by {self.stopping}")
        if returncode in s.no_restart_exit:
            self.log(logging.ERROR, f"child exited {returncode} (misconfigured): not restarting")
            return self._finish("exited", 1, f"the child exited {returncode}, which means it found a "
                                             "configuration error; fix it, then start the service again")
        if not s.restart:
            self.log(logging.INFO if returncode == 0 else logging.WARNING, f"{who} {ran}; not restarting (no -r)")
            return self._finish("exited", 0 if returncode == 0 else 1,
                                f"the child {ran}; restarting is off (no -r)")
        delay = self.backoff.delay_after(uptime)
        now = time.monotonic()
        if self.backoff.should_give_up(now):
            count = self.backoff.restarts_in_window(now)
            summary = f"{count} restarts in {_secs(s.restart_window)} s; last {how}"
            self.log(logging.ERROR, f"giving up after {summary}")
            return self._finish("gave-up", 1, f"gave up after {summary}")
        self.restart_at = now + delay
        self.log(logging.INFO if returncode == 0 else logging.WARNING,
                 f"{who} {ran}; restarting in {_secs(delay)} s (restart {self.restarts + 1})")
        self.record(state="backoff", child_pid=None, last_exit=how, next_start_at=time.time() + delay)

    def _stop(self, signame: str) -> None:
        if self.stopping:
            self.log(logging.INFO, f"{signame} received while stopping; still waiting for the child")
            return
        self.stopping = signame
        self.restart_at = None
        if self.child is None:
            self.log(logging.INFO, f"{signame} received; no child running; stopped")
            return self._finish("stopped", 0, f"stopped by {signame}")
        self.log(logging.INFO, f"{signame} received; stopping child pid {self.child.pid} "
                               f"(SIGKILL after {_secs(self.settings.stop_timeout)} s)")
        self.stop_deadline = time.monotonic() + self.settings.stop_timeout
        self.record(state="stopping")
        self._signal_child(signal.SIGTERM)

    def _signal_child(self, signum: int) -> None:
        """Signal the child's whole process group (it leads its own session)."""
        if not self._kill_group(self.child.pid, signum):
            try:  # it left its own group: signal the child itself
                os.kill(self.child.pid, signum)
            except ProcessLookupError:
                pass

    @staticmethod
    def _kill_group(pgid: int, signum: int) -> bool:
        # Safe after the leader was reaped: the kernel does not reuse a pid
        # while a process group still carries it.
        try:
            os.killpg(pgid, signum)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    def _finish(self, state: str, code: int, reason: str) -> None:
        self.exit_code, self.reason = code, reason
        self.restart_at = self.stop_deadline = None
        self.record(state=state, reason=reason, child_pid=None, last_exit=self.last_exit, next_start_at=None)
