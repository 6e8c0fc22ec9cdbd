"""Applying the server's changes to the local folder.

Each change is decided against the state row and the file on disk right now:
- the row already has this revision: our own commit coming back, nothing to do;
- the file is as last synced (or absent): take the server's version;
- the file changed here too: same content, adopt it; else move ours aside as a
  conflict copy and take the server's (the copy is uploaded by the push);
- deleted on the server: remove the local file only if it is as last synced;
  an edit made here is kept and uploaded again (delete-vs-edit keeps the edit).

Downloads assemble in a partial file named after the revision (a restarted
client keeps the chunks already verified), take chunks from local files that
hold them (renames, edits of big files) before asking the server, and batch
small files into one fetch. A change that cannot be applied now (a local write
error, a file busy changing) is kept in the state file and retried first.
"""
from __future__ import annotations

import asyncio
import logging
import os
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from services.sync.client.context import Context, Report
from services.core.durable import fsync_directory, sync_filesystem
from services.sync.client.folder_events import follow_rename
from services.sync.client.localfs import unique_conflict_name
from services.sync.client.names import case_key
from services.sync.client.progress import Progress
from services.sync.client.scan import state_from_stat
from services.sync.client.state import TrackedFile
from services.sync.client.remote import RemoteError
from services.sync.client.transfer import Assembly, Unstable, move_aside, prepare, read_chunk

log = logging.getLogger("hearth.sync")

PAGE = 1000
GROUP_BYTES = 16 << 20     # small files are fetched together, up to this many bytes ...
GROUP_FILES = 500          # ... or files per group
LARGE = 8 << 20            # a bigger file streams on its own, in windows of chunks
WINDOW = 32


@dataclass
class Download:
    change: dict
    replace: os.stat_result | None   # the local file it replaces, as seen when decided
    conflict: bool                   # move the local file aside first

    @property
    def relpath(self) -> str:
        return self.change["path"]

    @property
    def chunks(self) -> list[tuple[str, int]]:
        return [(cid, n) for cid, n in self.change["chunks"]]


async def pull(context: Context, report: Report) -> None:
    """Apply every change since the cursor (and those left pending), page by page."""
    pending = context.state.pending_changes()
    if pending:
        await apply_changes(context, report, pending)
    while True:
        cursor = context.state.cursor or 0
        page = await context.remote.changes(context.folder, cursor, limit=PAGE)
        follow_rename(context, page.get("folder"))
        if page["changes"]:
            await apply_changes(context, report, page["changes"])
        if page["cursor"] != cursor:
            context.state.set_cursor(page["cursor"])
        if not page["more"]:
            return


async def apply_changes(context: Context, report: Report, changes: list[dict]) -> None:
    downloads: list[Download] = []
    unlinks: list[tuple[TrackedFile, os.stat_result]] = []
    rmdirs: list[str] = []
    failed: dict[str, dict] = {}
    held: dict[str, dict] = {}
    replaced: list[dict] = []
    cases = CaseIndex()
    for change in changes:
        try:
            action = _decide(context, report, change, cases)
        except (OSError, Unstable) as error:
            failed[change["path"]] = change
            log.warning("cannot apply %s yet: %s", change["path"], _oserror(error))
            continue
        if isinstance(action, Download):
            downloads.append(action)
        elif isinstance(action, tuple) and action[0] == "unlink":
            unlinks.append(action[1:])
        elif isinstance(action, tuple) and action[0] == "replace-dir":
            replaced.append(change)
        elif action == "rmdir":
            rmdirs.append(change["path"])
        elif action == "retry":
            held[change["path"]] = change  # reported as a problem; kept to retry, not counted as pending
    failed.update(await _download_all(context, report, downloads))
    for row, seen in unlinks:  # after downloads: a renamed file is assembled from its old name
        _unlink(context, report, row, seen)
    for relpath in sorted(rmdirs, key=lambda p: p.count("/"), reverse=True):
        _rmdir(context, report, relpath)
    cleared = []
    for change in replaced:
        try:
            cleared.append(_clear_directory(context, change))
        except OSError as error:
            failed[change["path"]] = change
            log.warning("cannot replace directory %s yet: %s", change["path"], _oserror(error))
    failed.update(await _download_all(context, report, cleared))
    _remember_failures(context, changes, {**held, **failed})
    report.pending += len(failed)


def _remember_failures(context: Context, changes: list[dict], failed: dict[str, dict]) -> None:
    pending = {c["path"] for c in context.state.pending_changes()}
    for change in changes:
        relpath = change["path"]
        if relpath in failed:
            context.state.set_pending_change(relpath, change)
        elif relpath in pending:
            context.state.set_pending_change(relpath, None)


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # a file where a parent directory was: absent
        return None


def unchanged(row: TrackedFile, st: os.stat_result) -> bool:
    """The local file is exactly as it was when last synced (the scanner's fast path)."""
    return (row.kind == "file" and stat.S_ISREG(st.st_mode)
            and (row.size, row.mtime_ns, row.inode) == (st.st_size, st.st_mtime_ns, st.st_ino)
            and row.exec == bool(st.st_mode & stat.S_IXUSR))


def _decide(context: Context, report: Report, change: dict, cases: CaseIndex):
    relpath, revision = change["path"], change["id"]
    row = context.state.get_file(relpath)
    if row is not None and row.server_revision == str(revision):
        return None
    if context.ignore.ignored(relpath, is_dir=change["kind"] == "dir"):
        return None
    path = context.path(relpath)
    local = _lstat(path)
    if change["deleted"]:
        return _decide_deleted(context, report, row, local, change)
    if change["kind"] == "dir":
        return _make_directory(context, report, change, local)
    if local is None:
        if row is None and cases.clashes(path):
            context.problem(report, f"{relpath}: another name differing only in case exists here; not downloaded")
            return "retry"
        return Download(change, None, False)
    if stat.S_ISDIR(local.st_mode):
        return ("replace-dir", change)  # after this page's deletes, which may empty it
    if not stat.S_ISREG(local.st_mode):
        context.problem(report, f"{relpath}: a symlink or special file is in the way; not downloaded")
        return "retry"
    if row is not None and unchanged(row, local):
        return Download(change, local, False)
    prepared = prepare(context.root, relpath)  # changed here too: the same content is no conflict
    if [c[0] for c in prepared.chunks] == [c[0] for c in change["chunks"]]:
        context.state.put_file(TrackedFile.from_state(relpath, prepared.state, revision, chunks=prepared.chunks))
        report.other += 1
        return None
    return Download(change, local, True)


def _decide_deleted(context: Context, report: Report, row: TrackedFile | None, local, change: dict):
    relpath = change["path"]
    if row is None:
        return None
    if row.kind == "dir" or change["kind"] == "dir":
        return "rmdir"
    if local is not None and unchanged(row, local):
        return ("unlink", row, local)
    if local is not None and stat.S_ISREG(local.st_mode):
        log.warning("%s was deleted on the server but edited here: keeping the edit", relpath)
    context.state.delete_file(relpath)  # an edit is now a new file to upload; a vanished one is done
    return None


def _make_directory(context: Context, report: Report, change: dict, local) -> None:
    relpath = change["path"]
    path = context.path(relpath)
    if local is not None and not stat.S_ISDIR(local.st_mode):
        if not stat.S_ISREG(local.st_mode):
            context.problem(report, f"{relpath}: a symlink or special file is in the way of a directory")
            return "retry"
        row = context.state.get_file(relpath)
        if row is not None and unchanged(row, local):
            path.unlink()  # as last synced: the server keeps it among its versions
        else:
            aside = _conflict_path(context, path)
            move_aside(path, aside)
            log.warning("%s is a directory on the server: moved the local file to %s", relpath, aside.name)
        context.state.delete_file(relpath)
        local = None
    if local is None:
        path.mkdir(parents=True, exist_ok=True)
        report.other += 1
    context.state.put_file(TrackedFile.directory(relpath, change["id"]))
    return None


def _clear_directory(context: Context, change: dict) -> Download:
    """A file on the server where a directory is here: an empty directory goes; one that
    still holds files is moved aside whole, as a conflict copy (its files are uploaded
    from there), so the file can take the name."""
    path = context.path(change["path"])
    try:
        path.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        aside = _conflict_path(context, path)
        move_aside(path, aside)
        log.warning("%s is a file on the server: moved the local directory to %s", change["path"], aside.name)
    context.state.delete_file(change["path"])
    return Download(change, None, False)


class CaseIndex:
    """Names per directory up to case and normalisation, listed once per page of changes
    and extended with the names this page will create: on a case-insensitive disk, a
    download under a name that differs only by case would replace another file."""

    def __init__(self):
        self.directories: dict[Path, dict[str, str]] = {}

    def clashes(self, path: Path) -> bool:
        names = self.directories.get(path.parent)
        if names is None:
            try:
                listed = os.listdir(path.parent)
            except FileNotFoundError:
                listed = []
            names = self.directories[path.parent] = {case_key(name): name for name in listed}
        other = names.setdefault(case_key(path.name), path.name)
        return other != path.name


def _conflict_path(context: Context, path: Path) -> Path:
    return Path(unique_conflict_name(path, context.device, datetime.now()))


# --- downloads --------------------------------------------------------------

async def _download_all(context: Context, report: Report, downloads: list[Download]) -> dict[str, dict]:
    """Download everything; returns the changes that failed (path -> change)."""
    failed: dict[str, dict] = {}
    group: list[Download] = []
    group_bytes = 0
    for download in downloads:
        size = download.change["size"]
        if size > LARGE:
            await _flush_group(context, report, group, failed)
            group, group_bytes = [], 0
            await _download(context, report, download, failed)
            continue
        group.append(download)
        group_bytes += size
        if group_bytes >= GROUP_BYTES or len(group) >= GROUP_FILES:
            await _flush_group(context, report, group, failed)
            group, group_bytes = [], 0
    await _flush_group(context, report, group, failed)
    return failed


async def _flush_group(context: Context, report: Report, group: list[Download], failed: dict) -> None:
    """Fetch the chunks a group of small files lacks in one request, write every file,
    make them durable with one filesystem sync, then rename them into place."""
    if not group:
        return
    wanted = list(dict.fromkeys(cid for d in group for cid, _ in d.chunks if not _has_source(context, cid)))
    fetched: dict[str, bytes] = {}
    try:
        for start in range(0, len(wanted), 1000):
            async for cid, data in context.remote.fetch(context.folder, wanted[start:start + 1000]):
                fetched[cid] = data
    except RemoteError as error:  # one bad change must not hold back the others: fetch them one by one
        log.warning("batch download refused (%s); fetching file by file", error)
        fetched = {}
    report.fetched_chunks += len(fetched)
    sealed = []
    for download in group:
        assembly = await _assemble(context, report, download, fetched, failed, sync=False)
        if assembly is not None:
            sealed.append((download, assembly))
    if not sealed:
        return
    await asyncio.to_thread(sync_filesystem, context.root)
    rows = [row for download, assembly in sealed
            if (row := _finish(context, report, download, assembly, failed, sync=False)) is not None]
    for directory in {context.path(d.relpath).parent for d, _ in sealed}:
        fsync_directory(directory)
    context.state.put_files(rows)


def _has_source(context: Context, cid: str) -> bool:
    return bool(context.state.sources(cid))


def _local_chunk(context: Context, cid: str) -> bytes | None:
    for row, offset, length in context.state.sources(cid):
        data = read_chunk(context.path(row.relpath), offset, length, cid, row.file_state)
        if data is not None:
            return data
    return None


async def _download(context: Context, report: Report, download: Download, failed: dict) -> None:
    """One file on its own (a large one): assemble, fsync, rename, record."""
    fetched_before, reused_before = report.fetched_chunks, report.reused_chunks
    assembly = await _assemble(context, report, download, {}, failed, sync=True)
    if assembly is None:
        return
    row = _finish(context, report, download, assembly, failed, sync=True)
    if row is not None:
        context.state.put_file(row)
        log.info("downloaded %s (%d bytes): %d chunks fetched, %d already here%s", download.relpath,
                 download.change["size"], report.fetched_chunks - fetched_before,
                 report.reused_chunks - reused_before,
                 f", resumed after {assembly.resumed} chunks" if assembly.resumed else "")


async def _assemble(context: Context, report: Report, download: Download, fetched: dict[str, bytes],
                    failed: dict, sync: bool) -> Assembly | None:
    """Write every chunk of the download to its partial file and seal it; None on failure."""
    change = download.change
    progress = Progress(f"downloading {download.relpath}", change["size"])
    assembly = Assembly(context.path(download.relpath), change["id"], download.chunks, on_write=progress.advance)
    try:
        assembly.resumed = assembly.open()
        while (cid := assembly.next_chunk()) is not None:
            data = fetched.get(cid) or assembly.earlier(cid) or _local_chunk(context, cid)
            if data is None:
                await _fetch_window(context, report, assembly)
                continue
            if cid not in fetched:
                report.reused_chunks += 1
            assembly.write(data)
        assembly.seal(change["executable"], sync=sync)
        return assembly
    except (OSError, ValueError, RemoteError) as error:
        failed[download.relpath] = change
        log.warning("cannot download %s yet: %s", download.relpath, _oserror(error))
        return None
    finally:
        assembly.close()
        progress.close()


def _finish(context: Context, report: Report, download: Download, assembly: Assembly, failed: dict,
            sync: bool) -> TrackedFile | None:
    """Move a local version aside if it conflicts, then rename the download into place."""
    change, relpath = download.change, download.relpath
    try:
        replace = download.replace
        if download.conflict:
            aside = _conflict_path(context, assembly.target)
            move_aside(assembly.target, aside)
            log.warning("conflict: %s changed here and on the server; kept this device's version as %s",
                        relpath, aside.name)
            report.other += 1
            replace = None
        st, content_hash = assembly.finish(change["mtime_ns"], replace, sync=sync)
    except OSError as error:
        failed[relpath] = change
        log.warning("cannot write %s yet: %s", relpath, _oserror(error))
        return None
    report.downloaded += 1
    log.debug("downloaded %s", relpath)
    return TrackedFile.from_state(relpath, state_from_stat(st, content_hash), change["id"], chunks=download.chunks)


async def _fetch_window(context: Context, report: Report, assembly: Assembly) -> None:
    """Fetch the next run of chunks nothing local holds, writing each as it arrives."""
    window: list[str] = []
    for cid, _ in assembly.chunks[assembly.done:]:
        if len(window) >= WINDOW or cid in window or (window and _has_source(context, cid)):
            break
        window.append(cid)
    async for cid, data in context.remote.fetch(context.folder, window):
        assembly.write(data)
        report.fetched_chunks += 1


def _unlink(context: Context, report: Report, row: TrackedFile, seen: os.stat_result) -> None:
    path = context.path(row.relpath)
    now = _lstat(path)
    if now is None or not unchanged(row, now):
        context.state.delete_file(row.relpath)  # gone already, or edited since: keep the edit
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    context.state.delete_file(row.relpath)
    report.deleted_local += 1
    log.debug("deleted %s (deleted on the server)", row.relpath)


def _rmdir(context: Context, report: Report, relpath: str) -> None:
    try:
        context.path(relpath).rmdir()
        report.deleted_local += 1
    except FileNotFoundError:
        pass
    except OSError:
        log.info("kept directory %s (deleted on the server): it holds files not synced yet", relpath)
    context.state.delete_file(relpath)


def _oserror(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return f"{error.strerror}" + (f": {error.filename}" if error.filename else "")
    return str(error) or error.__class__.__name__
