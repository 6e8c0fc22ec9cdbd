"""`hearth rotate`: newsyslog(8) for hearth's logs.

Per due entry, in this order (the contract): delete archives beyond count, shift
log.N -> log.N+1 keeping each suffix, rename log -> log.0, create the new log
with its owner and mode, signal the pid file's process, wait until it has closed
log.0, then compress. Runs are serialised by an flock on `<conf>.lock`.
"""
from __future__ import annotations

import argparse
import fcntl
import grp
import logging
import os
import pwd
import re
import signal
import socket
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..core.errors import CommandError
from ..core.exitcodes import ExitStatus
from ..core.log import setup_logging
from .compress import compress_archive, fsync_dir
from .newsyslog import SUFFIXES, Entry, decide, list_archives, parse_conf
from .quiesce import signal_pidfile, wait_until_closed

log = logging.getLogger("rotate")

_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@dataclass
class Plan:
    """The file operations of one rotation, computed before any is done."""

    log: Path
    deletes: list[Path] = field(default_factory=list)
    moves: list[tuple[Path, Path]] = field(default_factory=list)   # in order
    compress: list[Path] = field(default_factory=list)              # after the signal
    discard: Path | None = None                                     # count 0: log.0 goes


def plan_rotation(entry: Entry, log_path: Path) -> Plan:
    """Which archives go, move and get compressed when `log_path` rotates."""
    plan = Plan(log=log_path)
    suffixes = "|".join(re.escape(s) for s in SUFFIXES.values())
    leftover = re.compile(r"\." + re.escape(log_path.name) + r"\.\d+(" + suffixes + r")\.tmp-\d+")
    plan.deletes += sorted(p for p in log_path.parent.iterdir() if leftover.fullmatch(p.name))
    kept = []
    for archive in list_archives(log_path):
        # After the shift, .N becomes .N+1, and only .0 … .count-1 may exist.
        if archive.number + 1 >= entry.count:
            plan.deletes.append(archive.path)
        else:
            kept.append(archive)
    archive0 = log_path.with_name(log_path.name + ".0")
    plain = [(0, archive0)]   # uncompressed archives after the shift, by number
    for archive in sorted(kept, key=lambda a: -a.number):
        target = log_path.with_name(f"{log_path.name}.{archive.number + 1}{archive.suffix}")
        plan.moves.append((archive.path, target))
        if not archive.suffix:
            plain.append((archive.number + 1, target))
    plan.moves.append((log_path, archive0))
    if entry.count == 0:
        plan.discard = archive0
    elif entry.compression:
        # p: log.0 stays plain; it is compressed once it has become log.1.
        first = 1 if entry.has("p") else 0
        plan.compress = [path for number, path in sorted(plain) if number >= first]
    return plan


def rotate_all(conf_path, force: bool = False, only=None, dry_run: bool = False) -> list[str]:
    """Rotate every due log of the conf file; returns the log paths rotated.

    `only` restricts the run to those log files (as written in the conf or as
    paths). A bad conf raises CommandError(CONFIG) before anything is touched; a
    failing entry is logged, the others still rotate, and CommandError(ERROR)
    is raised at the end.
    """
    conf = Path(conf_path)
    entries = _select(parse_conf(conf), conf, only)
    rotated: list[str] = []
    failures: list[str] = []
    with nullcontext() if dry_run else conf_lock(conf):
        for entry, log_path, pidfile in entries:
            try:
                if _rotate_entry(entry, log_path, pidfile, force, dry_run):
                    rotated.append(str(log_path))
            except (OSError, CommandError) as e:
                message = f"{log_path}: {_describe(e)}"
                log.error("%s (%s)", message, entry.where)
                failures.append(message)
    if failures:
        raise CommandError(f"{len(failures)} of {len(entries)} logs failed, first: {failures[0]}")
    return rotated


def _describe(error: Exception) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.filename}: {error.strerror}" if error.filename else error.strerror
    return str(error)


def _select(entries: list[Entry], conf: Path, only) -> list[tuple[Entry, Path, Path | None]]:
    """Each entry with its log and pid file paths, restricted to `only` if given."""
    chosen = [(e, _resolve(conf, e.logfile), _resolve(conf, e.pidfile) if e.pidfile else None)
              for e in entries]
    if not only:
        return chosen
    wanted = {name: os.path.abspath(name) for name in only}
    unknown = [n for n, p in wanted.items() if not any(n == e.logfile or p == str(lp) for e, lp, _ in chosen)]
    if unknown:
        raise CommandError(f"{conf}: no entry for {', '.join(unknown)}", ExitStatus.CONFIG)
    paths = set(wanted.values())
    return [c for c in chosen if c[0].logfile in wanted or str(c[1]) in paths]


def _resolve(conf: Path, name: str) -> Path:
    """Paths in the conf are relative to the conf file's directory."""
    return Path(os.path.abspath(conf.parent / name))


def _rotate_entry(entry: Entry, log_path: Path, pidfile: Path | None, force: bool, dry_run: bool) -> bool:
    """Rotate (or with C create) one entry's log if due; True if it was rotated."""
    decision = decide(entry, log_path, datetime.now(), force)
    say = print if dry_run else log.info
    if decision.action == "skip":
        (print if dry_run else log.debug)(f"{log_path}: {decision.reason}, not rotating")
        return False
    owner = _owner_ids(entry)
    if decision.action == "create":
        say(f"{log_path}: {decision.reason}, {'would create' if dry_run else 'creating'} it")
        if not dry_run:
            _create_log(log_path, entry, owner, turned_over=False)
        return False
    plan = plan_rotation(entry, log_path)
    if dry_run:
        _print_plan(plan, entry, decision.reason, pidfile)
        return True
    log.info("%s: rotating (%s)", log_path, decision.reason)
    _carry_out(plan, entry, owner, pidfile)
    return True


def _carry_out(plan: Plan, entry: Entry, owner: tuple[int, int], pidfile: Path | None) -> None:
    """The rotation sequence, in the contract's order."""
    for path in plan.deletes:
        path.unlink(missing_ok=True)
    for src, dst in plan.moves:
        os.rename(src, dst)
    # log.0 is stamped with the rotation time: the newest archive's mtime is
    # how the next run knows when this log was last rotated.
    os.utime(plan.moves[-1][1])
    fsync_dir(plan.log.parent)
    _create_log(plan.log, entry, owner, turned_over=not entry.has("B"))
    pid = None
    if pidfile and not entry.has("N"):
        pid = signal_pidfile(pidfile, entry.signal)
    archive0 = plan.moves[-1][1]
    if pid and (plan.discard or archive0 in plan.compress):
        wait_until_closed(pid, archive0)
    if plan.discard:
        plan.discard.unlink()
    for path in plan.compress:
        compress_archive(path, entry.compression)


def _print_plan(plan: Plan, entry: Entry, reason: str, pidfile: Path | None) -> None:
    print(f"{plan.log}: would rotate ({reason})")
    for path in plan.deletes:
        print(f"  rm {path}")
    for src, dst in plan.moves:
        print(f"  mv {src} {dst}")
    owner = f" owner {entry.owner or ''}:{entry.group or ''}" if entry.owner or entry.group else ""
    print(f"  create {plan.log} mode {entry.mode:03o}{owner}")
    if pidfile and not entry.has("N"):
        print(f"  kill -{signal.Signals(entry.signal).name} $(cat {pidfile})")
    if plan.discard:
        print(f"  rm {plan.discard}")
    for path in plan.compress:
        print(f"  compress {path} -> {path}{entry.compression}")


def _owner_ids(entry: Entry) -> tuple[int, int]:
    """uid and gid to give the new log (-1: leave as is). Only root can chown."""
    if os.geteuid() != 0:
        return -1, -1
    try:
        uid = -1 if entry.owner is None else (int(entry.owner) if entry.owner.isdigit()
                                               else pwd.getpwnam(entry.owner).pw_uid)
    except KeyError:
        raise CommandError(f"no such user {entry.owner!r}") from None
    try:
        gid = -1 if entry.group is None else (int(entry.group) if entry.group.isdigit()
                                               else grp.getgrnam(entry.group).gr_gid)
    except KeyError:
        raise CommandError(f"no such group {entry.group!r}") from None
    return uid, gid


def _create_log(path: Path, entry: Entry, owner: tuple[int, int], turned_over: bool) -> None:
    # Created 0600 and widened with fchmod, so it is never briefly too readable;
    # chown before chmod, because chown may clear set-id bits.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        if owner != (-1, -1):
            os.fchown(fd, *owner)
        os.fchmod(fd, entry.mode)
        if turned_over:
            os.write(fd, turned_over_line().encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def turned_over_line(now: float | None = None) -> str:
    """newsyslog's first line of a fresh log: `Nov 21 22:02:27 host newsyslog[pid]: logfile turned over`."""
    t = time.localtime(now)
    host = socket.gethostname().split(".")[0]
    return (f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} "
            f"{host} newsyslog[{os.getpid()}]: logfile turned over\n")


@contextmanager
def conf_lock(conf: Path):
    """Hold an exclusive flock on `<conf>.lock` so two runs never interleave."""
    path = conf.with_name(conf.name + ".lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except PermissionError:   # someone else's lock file: read access is enough to flock
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise CommandError(f"{path}: cannot open lock file: {e.strerror}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: another rotation is running, waiting for it", path)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --- command line ----------------------------------------------------------------

def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Flags of `hearth rotate`, as in newsyslog(8)."""
    parser.add_argument("-f", dest="conf", metavar="FILE", help="newsyslog.conf-format file to read")
    parser.add_argument("-F", dest="force", action="store_true", help="rotate every entry, due or not")
    parser.add_argument("-n", dest="dry_run", action="store_true", help="print what would be done, change nothing")
    parser.add_argument("-v", dest="verbose", action="store_true", help="say what is done and why")
    parser.add_argument("--every", type=float, metavar="SECONDS",
                        help="run forever, rotating every SECONDS (exit 0 on SIGTERM)")
    parser.add_argument("logs", nargs="*", metavar="LOGFILE", help="only rotate these entries")


def run(args: argparse.Namespace) -> int:
    """Entry point of `hearth rotate`."""
    conf = getattr(args, "conf", None) or getattr(args, "conf_default", None)
    if not conf:
        raise CommandError("no conf file: pass -f FILE", ExitStatus.CONFIG)
    if not logging.getLogger().handlers:
        setup_logging("warning")
    # The periodic runner logs each rotation; a manual run is quiet unless -v.
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO if args.every else logging.WARNING)
    options = dict(force=args.force, only=args.logs or None, dry_run=args.dry_run)
    if args.every is None:
        rotate_all(conf, **options)
        return ExitStatus.OK
    if args.every <= 0:
        raise CommandError("--every needs a number of seconds above 0", ExitStatus.CONFIG)
    return _run_every(conf, args.every, options)


def _run_every(conf, seconds: float, options: dict) -> int:
    """The periodic runner the supervisor keeps alive: rotate, sleep, until SIGTERM.

    A bad conf stops it with CONFIG (so the supervisor does not restart it); a
    failing log is logged and retried on the next round.
    """
    stop, wake = threading.Event(), threading.Event()

    def request_stop(*_):
        stop.set()
        wake.set()

    # SIGHUP (rc.d reload) runs a pass now instead of dying, Python's default.
    handlers = {signal.SIGTERM: request_stop, signal.SIGINT: request_stop, signal.SIGHUP: lambda *_: wake.set()}
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        while not stop.is_set():
            try:
                rotate_all(conf, **options)
            except CommandError as e:
                if e.status == ExitStatus.CONFIG:
                    raise
            wake.wait(seconds)
            wake.clear()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return ExitStatus.OK
