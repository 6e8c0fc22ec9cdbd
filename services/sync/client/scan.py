"""The periodic full scan: what changed on disk since the last one.

Walks with os.scandir (an explicit stack, never recursion), does not follow
symlinks, and prunes ignored directories. Fast path: a file whose (size,
mtime_ns, inode) equal the previous state is `unchanged` and is not read.
Accepted tradeoff (as in git, Syncthing, Dropbox): content rewritten with its
size, mtime and inode restored is NOT noticed; the watcher usually catches it.

Otherwise the file is hashed in a stream. Rule: never upload a file that changed
while being read — the file is stat'ed before and after hashing (and checked to
be the same inode at the path), and if anything moved it is `unstable`: retry later.

Symlinks are reported in `symlinks` and skipped: never followed, never synced,
never counted as deleted. Other non-regular files (fifos, sockets, devices) are
reported in `errors` and skipped the same way. Directories are walked and listed
in `dirs` (the daemon syncs empty ones too). A directory that cannot be read is
an error, and nothing under it is reported deleted.
"""
from __future__ import annotations

import bisect
import os
import stat
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

from services.sync.client.hashing import hash_fd
from services.sync.client.ignore import IgnoreRules
from services.sync.client.names import NameProblem, check_name


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int
    inode: int
    mode_exec: bool
    content_hash: str | None = None

    def same_metadata(self, other: "FileState") -> bool:
        return (self.size, self.mtime_ns, self.inode) == (other.size, other.mtime_ns, other.inode)


@dataclass
class ScanResult:
    changed: dict[str, FileState] = field(default_factory=dict)   # new, or content/exec changed
    touched: dict[str, FileState] = field(default_factory=dict)   # metadata changed, same content
    unchanged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unstable: list[str] = field(default_factory=list)             # changed while being read: retry
    symlinks: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)   # (relpath, reason)
    name_problems: list[NameProblem] = field(default_factory=list)
    dirs: set[str] = field(default_factory=set)                   # directories walked (not ignored)
    unreadable: list[str] = field(default_factory=list)           # directories that could not be listed

    @property
    def present_count(self) -> int:
        return len(self.changed) + len(self.touched) + len(self.unchanged) + len(self.unstable)


def state_from_stat(st: os.stat_result, content_hash: str | None = None) -> FileState:
    return FileState(st.st_size, st.st_mtime_ns, st.st_ino, bool(st.st_mode & stat.S_IXUSR), content_hash)


def hash_stable(path: str, hasher: Callable[[int], str] = hash_fd) -> FileState | None:
    """Hash the file at `path`; None when it changed (or was replaced) while being read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        before = os.fstat(fd)
        if not stat.S_ISREG(before.st_mode):
            raise OSError(f"not a regular file: {path}")
        digest = hasher(fd)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    at_path = os.lstat(path)
    moved = ((before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns)
             or (at_path.st_ino, at_path.st_size, at_path.st_mtime_ns)
             != (before.st_ino, before.st_size, before.st_mtime_ns))
    return None if moved else state_from_stat(before, digest)


def scan(root: str | os.PathLike, ignore: IgnoreRules, previous: Mapping[str, FileState],
         hasher: Callable[[int], str] = hash_fd, only: Iterable[str] | None = None,
         quick: bool = False, hash_new: bool = True) -> ScanResult:
    """Compare the tree under `root` with `previous` (relpath -> FileState, '/'-separated).

    `only` limits the scan to these relpaths (files, or directories walked whole): the
    watcher's hint. `quick` never reads content: a file whose metadata moved is
    `changed` with no hash (for `status`). `hasher(fd) -> hexdigest` is injectable so
    tests can count reads. `hash_new=False` leaves files with no previous state
    unread (`changed`, no hash): the daemon cuts them into chunks anyway, and
    reading them twice would double the cost of a first sync."""
    root = os.fspath(root)
    result = ScanResult()
    quick = (lambda old: True) if quick else (lambda old: old is None and not hash_new)
    seen: set[str] = set()
    stack: list[str] = []
    scopes: list[str] = [""]
    if only is None:
        stack.append("")
    else:
        scopes = _hinted(root, ignore, only, previous, hasher, quick, result, seen, stack)
    while stack:
        reldir = stack.pop()
        try:
            with os.scandir(os.path.join(root, reldir) if reldir else root) as entries:
                for entry in entries:
                    relpath = f"{reldir}/{entry.name}" if reldir else entry.name
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # vanished since listing; the next scan reports the delete
                    except OSError as error:
                        seen.add(relpath)
                        result.errors.append((relpath, f"cannot stat: {error.strerror or error}"))
                        continue
                    _visit(entry.path, relpath, st, ignore, previous, hasher, quick, result, seen, stack)
        except OSError as error:
            result.unreadable.append(reldir)
            result.errors.append((reldir, f"cannot read directory: {error.strerror or error}"))
    for relpath in _within(previous, scopes):
        if relpath in seen or ignore.ignored(relpath):
            continue
        if any(d == "" or relpath.startswith(d + "/") for d in result.unreadable):
            continue
        result.deleted.append(relpath)
    return result


def _within(previous: Mapping[str, FileState], scopes: list[str]) -> Iterable[str]:
    """The tracked paths at or below any scope (a view with `under(scope)` answers from its index)."""
    if "" in scopes:
        return previous
    under = getattr(previous, "under", None)
    if under is None:
        keys = sorted(previous)
        under = lambda scope: keys[bisect.bisect_left(keys, scope + "/"):bisect.bisect_left(keys, scope + "0")]
    found = dict.fromkeys(scope for scope in scopes if scope in previous)
    for scope in scopes:
        found.update(dict.fromkeys(under(scope)))
    return found


def _hinted(root: str, ignore: IgnoreRules, only: Iterable[str], previous: Mapping[str, FileState],
            hasher, quick, result: ScanResult, seen: set[str], stack: list[str]) -> list[str]:
    """Visit each hinted path (a directory's subtree goes on `stack`); returns the scopes
    in which a path missing from disk counts as deleted."""
    scopes = []
    for relpath in sorted(set(only)):
        parts = relpath.split("/")
        if any(ignore.ignored("/".join(parts[:i]), is_dir=True) for i in range(1, len(parts))):
            continue
        scopes.append(relpath)
        path = os.path.join(root, relpath)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError as error:
            seen.add(relpath)
            result.errors.append((relpath, f"cannot stat: {error.strerror or error}"))
            continue
        _visit(path, relpath, st, ignore, previous, hasher, quick, result, seen, stack)
    return scopes


def _visit(path: str, relpath: str, st: os.stat_result, ignore: IgnoreRules, previous: Mapping[str, FileState],
           hasher: Callable[[int], str], quick: Callable[[FileState | None], bool], result: ScanResult, seen: set[str],
           stack: list[str]) -> None:
    if stat.S_ISDIR(st.st_mode):
        if not ignore.ignored(relpath, is_dir=True) and relpath not in result.dirs:
            result.dirs.add(relpath)  # walked even when refused: what lies below is still judged file by file
            result.name_problems.extend(p for p in check_name(relpath) if p.code == "refused-name")
            stack.append(relpath)
        return
    if ignore.ignored(relpath):
        return
    seen.add(relpath)
    if stat.S_ISLNK(st.st_mode):
        result.symlinks.append(relpath)
        return
    if not stat.S_ISREG(st.st_mode):
        result.errors.append((relpath, "not a regular file; skipped"))
        return
    result.name_problems.extend(check_name(relpath))
    old = previous.get(relpath)
    now = state_from_stat(st)
    if old is not None and old.same_metadata(now) and old.mode_exec == now.mode_exec:
        result.unchanged.append(relpath)
        return
    if quick(old):
        result.changed[relpath] = now
        return
    try:
        fresh = hash_stable(path, hasher)
    except FileNotFoundError:
        seen.discard(relpath)
        return
    except OSError as error:
        result.errors.append((relpath, f"cannot read: {error.strerror or error}"))
        return
    if fresh is None or fresh.size != now.size or fresh.mtime_ns != now.mtime_ns:
        result.unstable.append(relpath)
    elif old is not None and (old.content_hash, old.mode_exec) == (fresh.content_hash, fresh.mode_exec):
        result.touched[relpath] = fresh
    else:
        result.changed[relpath] = fresh
