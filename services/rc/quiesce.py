"""Signal a daemon to reopen its log, then wait until it has let go of the old one.

Compressing an archive the daemon still writes to would lose every line written
after the compressor read past it. On Linux, /proc/<pid>/fd shows whether the
signalled process still holds a descriptor on the archive's inode; elsewhere a
fixed settle delay stands in for that check.
"""
from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger("rotate")

QUIESCE_TIMEOUT = 10.0   # seconds to wait for the daemon to close the archive
QUIESCE_POLL = 0.02
SETTLE_DELAY = 2.0       # without /proc: time a daemon gets to reopen its log


def signal_pidfile(pidfile: Path, signum: int) -> int | None:
    """Send `signum` to the pid in `pidfile`; returns the pid, or None if nobody got it.

    A missing, unreadable or stale pid file is logged, not fatal: the log has been
    rotated either way, and the daemon may simply not be running.
    """
    name = signal.Signals(signum).name
    try:
        text = pidfile.read_text(encoding="ascii", errors="replace").split()
    except FileNotFoundError:
        log.warning("%s: pid file missing, %s not sent", pidfile, name)
        return None
    except OSError as e:
        log.warning("%s: cannot read pid file (%s), %s not sent", pidfile, e.strerror, name)
        return None
    if not text or not text[0].isdigit() or int(text[0]) <= 1:
        log.warning("%s: no pid in pid file, %s not sent", pidfile, name)
        return None
    pid = int(text[0])
    try:
        os.kill(pid, signum)
    except ProcessLookupError:
        log.warning("%s: stale pid file, no process %d, %s not sent", pidfile, pid, name)
        return None
    except PermissionError:
        log.warning("%s: not allowed to send %s to pid %d", pidfile, name, pid)
        return None
    log.debug("sent %s to pid %d (%s)", name, pid, pidfile)
    return pid


def wait_until_closed(pid: int, path: Path, timeout: float = QUIESCE_TIMEOUT) -> bool:
    """Wait until process `pid` holds no descriptor on the file at `path`.

    Returns False if it still does after `timeout` seconds (the caller goes on
    anyway, after a warning). Without a readable /proc, sleeps SETTLE_DELAY.
    """
    st = os.stat(path)
    key = (st.st_dev, st.st_ino)
    deadline = time.monotonic() + timeout
    while True:
        try:
            holding = _holds(pid, key)
        except PermissionError:
            holding = None
        if holding is None:
            time.sleep(min(SETTLE_DELAY, timeout))
            return True
        if not holding:
            return True
        if time.monotonic() >= deadline:
            log.warning("pid %d still has %s open after %.0f s; compressing anyway", pid, path, timeout)
            return False
        time.sleep(QUIESCE_POLL)


def _holds(pid: int, key: tuple[int, int]) -> bool | None:
    """True/False if /proc tells whether `pid` has the inode open; None if it cannot tell."""
    if not os.path.isdir("/proc/self/fd"):
        return None
    fd_dir = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except FileNotFoundError:   # the process has exited: it holds nothing
        return False
    for fd in fds:
        try:
            st = os.stat(f"{fd_dir}/{fd}")
        except (FileNotFoundError, PermissionError):
            continue
        if (st.st_dev, st.st_ino) == key:
            return True
    return False
