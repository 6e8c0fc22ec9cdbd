"""newsyslog.conf(5): read and write entries, and decide whether a log is due.

    logfilename  [owner:group]  mode  count  size  when  [flags]  [pid_file]  [sig_num]

This module only reads: it parses the file, lists a log's archives and says
whether (and why) a log should rotate. `services.rc.rotate` does the rotating.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import signal
import struct
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from ..core.errors import CommandError
from ..core.exitcodes import ExitStatus
from .when import When, WhenError, parse_when

# Compression flag -> archive suffix. Only one may be given per entry.
SUFFIXES = {"Z": ".gz", "J": ".bz2", "X": ".xz", "Y": ".zst"}
# C create if missing, N no signal, p plain .0, B binary (no turned-over line),
# E skip empty logs. FreeBSD's G, R, T, U and D are not supported.
FLAGS = set(SUFFIXES) | set("CNPBE")
_SIGNAL_NAMES = {s.name: s for s in signal.Signals if not s.name.startswith("SIG_")}


@dataclass
class Entry:
    """One line of newsyslog.conf, as written (paths may be relative to the conf)."""

    logfile: str
    owner: str | None
    group: str | None
    mode: int
    count: int
    size_kb: int | None
    when: str | None
    flags: str = ""
    pidfile: str | None = None
    signal: int = int(signal.SIGHUP)
    where: str = field(default="", compare=False)   # "conf:line", for messages

    @property
    def compression(self) -> str:
        """The archive suffix the flags ask for ("" when uncompressed)."""
        return next((SUFFIXES[f] for f in self.flags if f in SUFFIXES), "")

    def has(self, flag: str) -> bool:
        return flag in self.flags


def parse_conf(path: str | os.PathLike) -> list[Entry]:
    """Read a newsyslog.conf file; a bad line raises CommandError(CONFIG) naming file:line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CommandError(f"{path}: cannot read: {e.strerror}", ExitStatus.CONFIG) from None
    entries: list[Entry] = []
    seen: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        entry = parse_line(fields, where)
        if entry.logfile in seen:
            _fail(where, "logfile", f"{entry.logfile} is already listed at {seen[entry.logfile]}")
        seen[entry.logfile] = where
        entries.append(entry)
    return entries


def parse_line(fields: list[str], where: str) -> Entry:
    """Turn one line's whitespace-separated fields into an Entry."""
    fields = list(fields)
    logfile = fields.pop(0)
    if logfile.startswith("<"):
        _fail(where, "logfile", f"{logfile} directives are not supported")
    owner = group = None
    if fields and ":" in fields[0]:
        owner, _, group = fields.pop(0).partition(":")
        owner, group = owner or None, group or None
    required = ["mode", "count", "size", "when"]
    if len(fields) < len(required):
        _fail(where, required[len(fields)], "missing")
    mode_s, count_s, size_s, when_s, *rest = fields
    if not re.fullmatch(r"[0-7]{1,4}", mode_s):
        _fail(where, "mode", f"{mode_s!r} is not an octal mode like 640")
    if not count_s.isdigit():
        _fail(where, "count", f"{count_s!r} is not a whole number of archives")
    entry = Entry(logfile=logfile, owner=owner, group=group, mode=int(mode_s, 8),
                  count=int(count_s), size_kb=_size_kb(size_s, where),
                  when=None if when_s == "*" else when_s, where=where)
    if entry.when is not None:
        try:
            parse_when(entry.when)
        except WhenError as e:
            _fail(where, "when", str(e))
    if rest and "/" not in rest[0]:
        entry.flags = _flags(rest.pop(0), where)
    if rest and "/" in rest[0]:
        entry.pidfile = rest.pop(0)
    if rest and entry.pidfile is None:
        _fail(where, "pid file", f"{rest[0]!r} is not a path (it must contain '/')")
    if rest:
        entry.signal = _signal(rest.pop(0), where)
    if rest:
        _fail(where, "sig_num", f"unexpected extra field {rest[0]!r}")
    return entry


def format_entry(entry: Entry) -> str:
    """One conf line for `entry`, columns aligned like FreeBSD's own newsyslog.conf."""
    owner = f"{entry.owner or ''}:{entry.group or ''}" if entry.owner or entry.group else ""
    cols = [entry.logfile.ljust(39), owner.ljust(15), f"{entry.mode:03o}".ljust(4),
            str(entry.count).ljust(5), ("*" if entry.size_kb is None else str(entry.size_kb)).ljust(6),
            (entry.when or "*").ljust(6), entry.flags or "-"]
    if entry.pidfile:
        cols[-1] = cols[-1].ljust(5)
        cols += [entry.pidfile.ljust(29), signal.Signals(entry.signal).name]
    return " ".join(cols).rstrip()


def _fail(where: str, field_name: str, why: str):
    raise CommandError(f"{where}: bad {field_name}: {why}", ExitStatus.CONFIG)


def _size_kb(text: str, where: str) -> int | None:
    if text == "*":
        return None
    m = re.fullmatch(r"(\d+)([KkMmGg]?)", text)
    if not m:
        _fail(where, "size", f"{text!r} is not a size in KB (or *)")
    return int(m[1]) * {"": 1, "K": 1, "M": 1024, "G": 1024 * 1024}[m[2].upper()]


def _flags(text: str, where: str) -> str:
    if text == "-":
        return ""
    flags = "".join(f if f in "p" else f.upper() for f in text)
    for f in flags:
        if f.upper() not in FLAGS:
            _fail(where, "flags", f"unknown flag {f!r} in {text!r}")
    flags = flags.replace("P", "p")
    if sum(f in SUFFIXES for f in flags) > 1:
        _fail(where, "flags", f"{text!r} asks for more than one compression")
    return flags


def _signal(text: str, where: str) -> int:
    if text.isdigit():
        if int(text) in {int(s) for s in signal.valid_signals()}:
            return int(text)
    else:
        name = text.upper() if text.upper().startswith("SIG") else "SIG" + text.upper()
        if name in _SIGNAL_NAMES:
            return int(_SIGNAL_NAMES[name])
    _fail(where, "sig_num", f"{text!r} is not a signal name or number")


# --- archives and the "is it due" decision --------------------------------------

@dataclass(frozen=True)
class Archive:
    """log.N or log.N.gz (…): number N, the path, and its compression suffix."""

    number: int
    path: Path
    suffix: str


def list_archives(log: Path) -> list[Archive]:
    """Every archive of `log`, oldest number last; unknown suffixes are not archives."""
    pattern = re.compile(re.escape(log.name) + r"\.(\d+)(" +
                         "|".join(re.escape(s) for s in SUFFIXES.values()) + r")?")
    try:
        names = os.listdir(log.parent)
    except FileNotFoundError:
        return []
    found = [Archive(int(m[1]), log.parent / n, m[2] or "")
             for n in names if (m := pattern.fullmatch(n))]
    return sorted(found, key=lambda a: (a.number, a.suffix))


def last_rotated(log: Path, st: os.stat_result) -> float:
    """When `log` was last rotated, as an epoch time.

    Rotation stamps log.0 with the time it happened, so the newest archive's mtime
    tells. With no archive, the log's birth time is when it started (on filesystems
    that do not record one, its mtime: a log still being written then rotates on
    size only until it has an archive).
    """
    archives = list_archives(log)
    if archives:
        newest = [a for a in archives if a.number == archives[0].number]
        return max(a.path.stat().st_mtime for a in newest)
    born = birth_time(log, st)
    return st.st_mtime if born is None else born


@dataclass(frozen=True)
class Decision:
    """What to do with one entry now: "rotate", "create" (C, log missing) or "skip"."""

    action: str
    reason: str


def decide(entry: Entry, log: Path, now: datetime, force: bool = False) -> Decision:
    """Whether `log` should rotate at `now` under `entry`, and why."""
    try:
        st = log.stat()
    except FileNotFoundError:
        if entry.has("C"):
            return Decision("create", "missing, flag C")
        return Decision("skip", "does not exist")
    if entry.has("E") and st.st_size == 0:
        return Decision("skip", "empty, flag E")
    if force:
        return Decision("rotate", "forced")
    if entry.size_kb is not None and st.st_size >= entry.size_kb * 1024:
        return Decision("rotate", f"size {st.st_size // 1024} KB >= {entry.size_kb} KB")
    if entry.when is not None:
        when: When = parse_when(entry.when)
        last = datetime.fromtimestamp(last_rotated(log, st))
        if when.is_due(now, last):
            return Decision("rotate", f"time {entry.when} is due (last rotated {last:%Y-%m-%d %H:%M})")
    return Decision("skip", "not due")


# --- birth time: FreeBSD has st_birthtime; Linux needs statx(2) -------------------

_STATX_BTIME = 0x800
_AT_FDCWD = -100
_libc = None


def birth_time(path: Path, st: os.stat_result | None = None) -> float | None:
    """When the file was created, or None where the system or filesystem does not say."""
    st = st or os.stat(path)
    born = getattr(st, "st_birthtime", None)
    if born:
        return born
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    statx = getattr(_libc, "statx", None)
    if statx is None:
        return None
    buf = ctypes.create_string_buffer(256)   # struct statx is 256 bytes
    if statx(_AT_FDCWD, os.fsencode(path), 0, _STATX_BTIME, buf) != 0:
        return None
    (mask,) = struct.unpack_from("=I", buf, 0)
    if not mask & _STATX_BTIME:
        return None
    sec, nsec = struct.unpack_from("=qI", buf, 80)   # stx_btime
    return sec + nsec / 1e9
