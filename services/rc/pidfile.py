"""Pid files held locked for their owner's whole life, like FreeBSD's pidfile(3).

The owner keeps an flock(2) on the open file until it exits, so a file left
behind by a process killed with SIGKILL is recognisable: nobody holds its lock.
Such a stale file is simply taken over. The lock belongs to the open file
description, so it survives fork(2) as long as a descendant keeps the fd.
"""
from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass
from pathlib import Path

# A `status` probe holds the lock for a few microseconds; retrying for this long
# keeps such a probe from making a fresh start report "already running".
_LOCK_RETRY_SECONDS = 0.1


@dataclass(frozen=True)
class PidStatus:
    """What a pid file says: its pid, and whether a live owner holds its lock."""

    pid: int | None
    running: bool  # the file exists and its lock is held
    stale: bool    # the file exists and nobody holds its lock


class AlreadyRunning(Exception):
    """Another live process holds the lock of this pid file."""

    def __init__(self, path: Path, pid: int | None):
        super().__init__(f"already running as pid {pid if pid is not None else '?'} ({path})")
        self.path = path
        self.pid = pid


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def pidfile_status(path: str | os.PathLike) -> PidStatus:
    """Probe a pid file without disturbing its owner (the probe's lock is released at once)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return PidStatus(pid=None, running=False, stale=False)
    try:
        pid = _read_pid(fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return PidStatus(pid=pid, running=True, stale=False)
        return PidStatus(pid=pid, running=False, stale=True)
    finally:
        os.close(fd)  # closing drops the probe's lock, if it got one


class PidFile:
    """A pid file this process has created (or taken over) and holds locked."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self.fd = fd

    @classmethod
    def acquire(cls, path: str | os.PathLike) -> PidFile:
        """Create and lock `path`, truncating a stale file; raise AlreadyRunning if it is held."""
        path = Path(path)
        deadline = time.monotonic() + _LOCK_RETRY_SECONDS
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _read_pid(fd)
                os.close(fd)
                if time.monotonic() >= deadline:
                    raise AlreadyRunning(path, pid) from None
                time.sleep(0.01)
                continue
            except BaseException:
                os.close(fd)
                raise
            # The previous owner may have unlinked the file between our open and
            # our lock; then we hold a lock nobody else can see, so start over.
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                return cls(path, fd)
            os.close(fd)

    def write(self, pid: int | None) -> None:
        """Replace the file's content with `pid` (or empty it when there is none)."""
        os.ftruncate(self.fd, 0)
        if pid is not None:
            os.pwrite(self.fd, f"{pid}\n".encode(), 0)

    def close(self) -> None:
        """Let go of the file (and its lock) without removing it."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def remove(self) -> None:
        """Remove the file, then release the lock: the clean-exit path."""
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self.close()
