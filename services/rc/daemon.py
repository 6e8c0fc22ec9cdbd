"""`hearth daemon`: our daemon(8). Run a command detached, supervised, logged and restarted.

    hearth daemon -P var/run/api.pid -p var/run/api.child.pid -o var/log/api.log -H \\
        -r -t api -u www -e var/run/api.env -- python -m services.api

Everything the user can get wrong is checked before detaching, so errors come
back as one line and exit code 2 (3 when the pid file is held by a live
wrapper). The invoking process exits only once the detached wrapper holds its
pid file locks, has written its pid and started the child. Without -f the
wrapper keeps the caller's stdout and stderr, like FreeBSD's daemon(8).
"""
from __future__ import annotations

import argparse
import fcntl
import logging
import math
import os
import select
import sys

from services.core.errors import CommandError
from services.core.exitcodes import NO_RESTART_CODES, ExitStatus
from services.core.log import OneLineFormatter

from .outputlog import OutputLog, OutputLogHandler
from .pidfile import AlreadyRunning, PidFile
from .spawn import check_command, child_environment, load_env_files, lookup_user
from .state import StateFile
from .wrapper import Settings, Wrapper

READY_TIMEOUT = 30.0


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Add daemon(8)'s flags (plus hearth's long options) to a (sub)parser."""
    add = parser.add_argument
    add("-p", dest="child_pidfile", metavar="FILE", help="pid file for the child's pid (rewritten on restart)")
    add("-P", dest="supervisor_pidfile", metavar="FILE",
        help="pid file for the wrapper's pid; the state file lives next to it (.pid -> .state)")
    add("-o", dest="logfile", metavar="FILE", help="append the child's output and the wrapper's events here")
    add("-H", dest="reopen_on_hup", action="store_true", help="reopen the log file on SIGHUP (rotation)")
    add("-m", dest="mask", metavar="MASK", default="3",
        help="which child output goes to the log: 1 stdout, 2 stderr, 3 both (default 3)")
    add("-u", dest="user", metavar="USER", help="run the child as USER (needs root)")
    add("-t", dest="title", metavar="TITLE", help="name for the process title and log lines")
    add("-r", dest="restart", action="store_true", help="restart the child whenever it exits")
    add("-R", dest="restart_delay", metavar="SECS", help="first restart delay (implies -r; default 1)")
    add("-C", dest="max_restarts", metavar="N", help="give up after N restarts within --restart-window")
    add("-e", dest="env_files", metavar="FILE", action="append", default=[],
        help="KEY=VALUE file merged into the child's environment (repeatable; later files win)")
    add("-f", dest="quiet", action="store_true", help="send the wrapper's stdin, stdout and stderr to /dev/null")
    add("--foreground", action="store_true", help="don't detach (systemd Type=simple, tests)")
    add("--backoff-max", metavar="SECS", default="60", help="longest restart delay (default 60)")
    add("--stable-after", metavar="SECS", default="60",
        help="uptime after which a child counts as healthy and the delay resets (default 60)")
    add("--restart-window", metavar="SECS", default="300", help="window for -C (default 300)")
    add("--stop-timeout", metavar="SECS", default="10", help="SIGKILL the child this long after SIGTERM (default 10)")
    add("--no-restart-exit", metavar="CODES", default=",".join(str(int(c)) for c in sorted(NO_RESTART_CODES)),
        help="exit codes meaning 'misconfigured, don't restart' (comma list, default 2,78)")
    add("command", nargs=argparse.REMAINDER, help="-- command [args ...]")


def _bad(message: str) -> CommandError:
    return CommandError(message, ExitStatus.CONFIG)


def _seconds(value: str, flag: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise _bad(f"{flag} {value}: expected a number of seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise _bad(f"{flag} {value}: expected a number of seconds, 0 or more")
    return seconds


def _count(value: str, flag: str) -> int:
    if not value.isdigit():
        raise _bad(f"{flag} {value}: expected a whole number, 0 or more")
    return int(value)


def _exit_codes(value: str) -> frozenset[int]:
    codes = [part.strip() for part in value.split(",") if part.strip()]
    if not all(code.isdigit() and int(code) <= 255 for code in codes):
        raise _bad(f"--no-restart-exit {value}: expected exit codes 0-255 separated by commas")
    return frozenset(int(code) for code in codes)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Validate the command line into Settings, raising CommandError (exit 2) on bad input."""
    argv = list(args.command)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if args.mask not in ("1", "2", "3"):
        raise _bad(f"-m {args.mask}: expected 1 (stdout), 2 (stderr) or 3 (both)")
    user = lookup_user(args.user) if args.user else None
    env_values = load_env_files(args.env_files)
    env = child_environment(user, env_values)
    check_command(argv, env)
    restart_delay = 1.0 if args.restart_delay is None else _seconds(args.restart_delay, "-R")
    return Settings(
        name=args.title or os.path.basename(argv[0]),
        argv=argv, env=env, env_file_vars=len(env_values),
        user=user if user is not None and os.geteuid() == 0 else None,
        mask=int(args.mask), reopen_on_hup=args.reopen_on_hup,
        restart=args.restart or args.restart_delay is not None,
        restart_delay=restart_delay,
        backoff_max=_seconds(args.backoff_max, "--backoff-max"),
        stable_after=_seconds(args.stable_after, "--stable-after"),
        max_restarts=None if args.max_restarts is None else _count(args.max_restarts, "-C"),
        restart_window=_seconds(args.restart_window, "--restart-window"),
        stop_timeout=_seconds(args.stop_timeout, "--stop-timeout"),
        no_restart_exit=_exit_codes(args.no_restart_exit),
    )


def run(args: argparse.Namespace) -> int:
    """`hearth daemon`: start the wrapper (detached unless --foreground); returns the exit code."""
    settings = settings_from_args(args)
    paths = {name: os.path.abspath(getattr(args, name)) if getattr(args, name) else None
             for name in ("supervisor_pidfile", "child_pidfile", "logfile")}
    if paths["supervisor_pidfile"] and paths["supervisor_pidfile"] == paths["child_pidfile"]:
        raise _bad("-P and -p must name different files")
    held: list[PidFile] = []
    try:
        for key in ("supervisor_pidfile", "child_pidfile"):
            if paths[key]:
                held.append(PidFile.acquire(paths[key]))
        output = OutputLog(paths["logfile"]) if paths["logfile"] else None
    except AlreadyRunning as error:
        _release(held)
        # The one error printed here rather than by the CLI: `hearth up` and rc scripts
        # match this exact line, prefix included.
        print(f"hearth daemon: {error}", file=sys.stderr)
        return int(ExitStatus.ALREADY_RUNNING)
    except OSError as error:
        _release(held)
        raise _bad(f"cannot open {error.filename}: {error.strerror}") from None
    supervisor_pidfile = held[0] if paths["supervisor_pidfile"] else None
    child_pidfile = held[-1] if paths["child_pidfile"] else None
    job = _Job(settings, args, supervisor_pidfile, child_pidfile, output)
    return job.supervise() if args.foreground else job.detach()


def _release(held: list[PidFile]) -> None:
    for pidfile in held:
        pidfile.remove()  # created (or taken over) by us, never by a live owner


class _Job:
    """One wrapper from the moment its files are held until it exits."""

    def __init__(self, settings: Settings, args: argparse.Namespace, supervisor_pidfile: PidFile | None,
                 child_pidfile: PidFile | None, output: OutputLog | None):
        self.settings = settings
        self.args = args
        self.supervisor_pidfile = supervisor_pidfile
        self.child_pidfile = child_pidfile
        self.output = output
        self.own_fds = [f.fd for f in (supervisor_pidfile, child_pidfile, output) if f is not None]
        self.reason: str | None = None  # why the wrapper ended, if it did

    def detach(self) -> int:
        """Fork twice and setsid; return 0 once the wrapper reports it is up."""
        ready_r, ready_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        first = os.fork()
        if first == 0:  # the intermediate: leave the caller's session, fork the wrapper, vanish
            code = int(ExitStatus.ERROR)
            try:
                os.close(ready_r)
                os.setsid()
                code = self._detached_wrapper(ready_w) if os.fork() == 0 else 0
            finally:
                os._exit(code)
        os.close(ready_w)
        for held in (self.supervisor_pidfile, self.child_pidfile, self.output):
            if held is not None:
                held.close()  # the wrapper's copies of these fds keep the locks
        os.waitpid(first, 0)
        return _await_ready(ready_r)

    def _detached_wrapper(self, ready_w: int) -> int:
        reported = False

        def ready(message: str = "ok") -> None:
            nonlocal reported
            if not reported:
                reported = True
                os.write(ready_w, message.encode() + b"\n")
                os.close(ready_w)
        try:
            _redirect_stdio(self.args.quiet)
            _close_inherited_fds(keep={ready_w, *self.own_fds})
            code = self.supervise(ready)
            ready(f"{int(ExitStatus.ERROR)} {self.reason or 'the wrapper exited at once'}")
            return code
        except BaseException as error:  # report instead of leaving the caller waiting
            if not reported:
                ready(f"{int(ExitStatus.ERROR)} wrapper failed to start: {error!r}")
            logging.getLogger("daemon").exception("%s: wrapper failed", self.settings.name)
            return int(ExitStatus.ERROR)

    def supervise(self, ready=lambda: None) -> int:
        """Run the wrapper in this process; remove the pid files on the way out."""
        if self.args.foreground and self.args.quiet:
            _redirect_stdio(quiet=True)
        log = _wrapper_logger(self.output)
        state = None
        if self.supervisor_pidfile is not None:
            self.supervisor_pidfile.write(os.getpid())
            state = StateFile(self.supervisor_pidfile.path, name=self.settings.name,
                              log=self.output.path if self.output else None)
        name = self.settings.name
        log.info("%s: wrapper pid %d supervising %s", name, os.getpid(), self.settings.argv[0])
        if self.args.env_files:  # how many, never which values
            log.info("%s: loaded %d variables from %d env files", name, self.settings.env_file_vars,
                     len(self.args.env_files))
        wrapper = Wrapper(self.settings, log, self.output, self.child_pidfile, state)
        try:
            return wrapper.run(ready)
        finally:
            self.reason = wrapper.reason
            for pidfile in (self.child_pidfile, self.supervisor_pidfile):
                if pidfile is not None:
                    pidfile.remove()
            if self.output is not None:
                self.output.close()


def _wrapper_logger(output: OutputLog | None) -> logging.Logger:
    handler = OutputLogHandler(output) if output is not None else logging.StreamHandler(sys.stderr)
    handler.setFormatter(OneLineFormatter())
    log = logging.getLogger("daemon")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log


def _await_ready(ready_r: int) -> int:
    """Wait for the detached wrapper's `ok` (or its error) on the readiness pipe."""
    data = b""
    with os.fdopen(ready_r, "rb", buffering=0) as pipe:
        while True:
            if not select.select([pipe], [], [], READY_TIMEOUT)[0]:
                raise CommandError(f"the wrapper did not report ready within {READY_TIMEOUT:g} s",
                                   ExitStatus.TIMEOUT)
            chunk = pipe.read(4096)
            if not chunk:
                break
            data += chunk
    message = data.decode("utf-8", "replace").strip()
    if message == "ok":
        return int(ExitStatus.OK)
    status, _, reason = message.partition(" ")
    if not status.isdigit():
        raise CommandError("the wrapper exited before reporting ready", ExitStatus.ERROR)
    raise CommandError(reason, ExitStatus(int(status)))


def _redirect_stdio(quiet: bool) -> None:
    """stdin from /dev/null; with -f stdout and stderr too."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2) if quiet else (0,):
        os.dup2(devnull, fd)
    os.close(devnull)


def _close_inherited_fds(keep: set[int]) -> None:
    """Close descriptors the wrapper inherited from its caller (pipes, sockets).

    Python opens its own files close-on-exec, so an fd without FD_CLOEXEC came
    from outside; closing only those never pulls a file out from under a Python
    object. The child is started with close_fds anyway.
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd")]
    except OSError:
        fds = list(range(3, 256))
    for fd in fds:
        if fd < 3 or fd in keep:
            continue
        try:
            inherited = not fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC
        except OSError:
            continue
        if inherited:
            os.close(fd)
