"""Data at rest is private: the data directory is 0700 and its files 0600 for the daemons' user.

Two layers, so that neither a forgotten mode nor a loose umask leaks anything:
every hearth process (the `hearth` command, each daemon, and so the
supervisor and the wrappers it starts) runs with umask 077, and the places
that create data (the database, the chunk store, logs, pid and run files)
also pass explicit private modes. `make_private` brings an existing data
directory to these modes; `hearth init` and `hearth up` run it, so an
installation made by an older version is fixed on its next start.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

UMASK = 0o077
DIR_MODE = 0o700
FILE_MODE = 0o600
EXECUTABLE_MODE = 0o700  # generated rc.d scripts


def private_umask() -> None:
    """Files this process (and its children) creates are its user's alone, whatever the caller's umask."""
    os.umask(UMASK)


def private_dir(path: Path) -> Path:
    """Create `path` and each missing parent 0700 (mkdir's parents=True would make them by the umask);
    an existing one is left as it is."""
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another process made it meanwhile
            pass
    return missing[0] if missing else path


def create_private_file(path: Path) -> None:
    """Make sure `path` exists as a 0600 file before another library creates it with its own mode.

    SQLite gives the -wal and -shm files the mode of the database file, so this covers them too.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE))
    except FileExistsError:
        pass


def make_private(root: Path) -> None:
    """Directories under `root` (and `root`) 0700, files 0600 (0700 if executable); sockets and links untouched."""
    if not root.is_dir():
        return
    os.chmod(root, DIR_MODE)
    for directory, subdirs, files in os.walk(root):
        for name in subdirs:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, DIR_MODE)
        for name in files:
            path = os.path.join(directory, name)
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:  # a temp file that was renamed meanwhile
                continue
            if stat.S_ISREG(mode):
                os.chmod(path, EXECUTABLE_MODE if mode & 0o111 else FILE_MODE)
