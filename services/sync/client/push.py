"""Sending local changes to the server: directories, renames, new content, deletes.

The scan says what differs from the state file. A deleted file whose content
reappears under a new name is a rename (no upload). New content is cut into
chunks in one read (never committed if the file moved during it); the server
is asked which chunks it lacks, only those are sent, in batches, and then up
to 1000 files are committed in one request, each against the revision it was
based on. Deletes are gathered across cycles and judged whole by the
mass-deletion guard (see guard.PendingDeletions), then sent many per request
and non-recursively, so nothing the server has and this device never saw is
removed with a directory.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Mapping

from services.sync.client.context import Context, Report
from services.sync.client import hold
from services.sync.client.guard import deletion_guard
from services.sync.client.names import case_clashes
from services.sync.client.progress import Progress
from services.sync.client.remote import RemoteError
from services.sync.client.scan import FileState, ScanResult, scan
from services.sync.client.state import TrackedFile
from services.sync.client.transfer import Prepared, Unstable, prepare, read_chunk

log = logging.getLogger("hearth.sync")

BATCH_FILES = 500
FIRST_BATCH_FILES = 50    # the first commit comes early, so other devices start downloading at once
MKDIRS_IN_FLIGHT = 8
BATCH_BYTES = 256 << 20
UPLOAD_BYTES = 8 << 20    # chunk data per upload request ...
UPLOADS_IN_FLIGHT = 3     # ... and how many such requests run at once
PREPARE_GROUP = 64        # files cut per worker-thread hop


@dataclass
class Batch:
    items: list[tuple[Prepared, int | None]] = field(default_factory=list)  # (file, base revision)
    size: int = 0
    limit: int = BATCH_FILES

    def add(self, prepared: Prepared, base: int | None) -> None:
        self.items.append((prepared, base))
        self.size += prepared.size

    @property
    def full(self) -> bool:
        return len(self.items) >= self.limit or self.size >= BATCH_BYTES


async def push(context: Context, report: Report, hints: set[str] | None) -> None:
    deletions = context.deletions
    if hints is not None and not hints and not deletions:
        return
    previous = context.state.file_states() if hints is None else context.state.tracked_view()
    result = await asyncio.to_thread(scan, context.root, context.ignore, previous, only=hints, hash_new=False)
    _report_scan(context, report, result, hints)
    retyped = [p for p in result.deleted if p in result.dirs]  # a file replaced by a directory
    deletions.update(result, hints, _gone_dirs(context, result, hints))
    rows = {p: context.state.get_file(p) for p in (*deletions.files, *retyped)}
    await _send_deletes(context, report, retyped, [], rows)
    skip = {p.relpath for p in result.name_problems if p.severity == "error"}
    await _mkdirs(context, report, result, skip)
    changed = [p for p in sorted(result.changed) if p not in skip
               and not _blocked(context, report, p, result.changed[p])]
    uploads = Uploads(context, report, previous, rows)  # a pending deletion may be a rename's source
    await uploads.run(changed, result.touched)
    deletions.discard(uploads.moved_away)
    await _judge_deletes(context, report, result, rows, len(previous))
    await uploads.run_deferred()


def _report_scan(context: Context, report: Report, result: ScanResult, hints: set[str] | None) -> None:
    report.pending += len(result.unstable)
    for relpath in result.unstable:
        log.info("%s is changing; will upload once it settles", relpath)
    for problem in result.name_problems:
        if problem.severity == "error":
            context.problem(report, f"{problem.relpath}: {problem.message}; not uploaded")
    if hints is None:  # a full scan sees every name: warn about names only case tells apart
        present = [*result.changed, *result.touched, *result.unchanged, *result.unstable]
        for group in case_clashes(present):
            warning = " and ".join(group)
            if warning not in context.reported:
                context.reported.add(warning)
                log.warning("%s differ only by case: a device with a case-insensitive disk (macOS, Windows) "
                            "cannot hold both and will report them", warning)
    for relpath in result.symlinks:
        if relpath not in context.reported:
            context.reported.add(relpath)
            log.info("%s is a symlink: symlinks are not synced", relpath)
    for relpath, reason in result.errors:
        context.problem(report, f"{relpath or '.'}: {reason}")


def _blocked(context: Context, report: Report, relpath: str, state: FileState) -> bool:
    refused = context.blocked.get(relpath)
    if refused is None:
        return False
    if refused[0] == (state.size, state.mtime_ns, state.inode):
        report.problems.append(refused[1])
        return True
    del context.blocked[relpath]  # changed since it was refused: try again
    return False


def _depth(relpath: str) -> int:
    return relpath.count("/")


async def _mkdirs(context: Context, report: Report, result: ScanResult, skip: set[str]) -> None:
    """Create new directories on the server, several requests at a time (the server
    does not need a parent to exist first); not those whose name is in `skip`."""
    tracked = context.state.directories()
    slots = asyncio.Semaphore(MKDIRS_IN_FLIGHT)

    async def mkdir(relpath: str) -> None:
        async with slots:
            try:
                revision = await context.remote.mkdir(context.folder, relpath, context.device)
            except RemoteError as error:
                _refused(context, report, relpath, None, error, "directory not created on the server")
                return
        context.state.put_file(TrackedFile.directory(relpath, revision["id"]))
        report.other += 1

    try:
        async with asyncio.TaskGroup() as group:
            for relpath in sorted((d for d in result.dirs if d not in tracked and d not in skip), key=_depth):
                group.create_task(mkdir(relpath))
    except ExceptionGroup as failure:
        raise failure.exceptions[0] from None


def _is_directory(path) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


def _gone_dirs(context: Context, result: ScanResult, hints) -> list[str]:
    def in_scope(relpath: str) -> bool:
        return hints is None or any(relpath == h or relpath.startswith(h + "/") for h in hints)

    gone = [d for d in context.state.directories()
            if in_scope(d) and d not in result.dirs and not _is_directory(context.path(d))
            and not any(u == "" or d.startswith(u + "/") for u in result.unreadable)]
    return sorted(gone, key=_depth, reverse=True)


def _refused(context: Context, report: Report, relpath: str, state: FileState | None, error: RemoteError,
             what: str, block: bool = False) -> None:
    """Report the server's refusal; with a `state` (or `block`), don't ask again until the file changes."""
    message = f"{relpath}: {what}: {error.reason}"
    if state is not None or block:
        context.blocked[relpath] = (None if state is None else (state.size, state.mtime_ns, state.inode), message)
    context.problem(report, message)


# --- uploads ------------------------------------------------------------------

def _prepare_many(context: Context, relpaths: list[str]) -> list[Prepared | str | None]:
    """Prepared files; for the others "unstable", or None (gone), or an error message."""
    results = []
    for relpath in relpaths:
        try:
            results.append(prepare(context.root, relpath))
        except Unstable:
            results.append("unstable")
        except FileNotFoundError:
            results.append(None)
        except OSError as error:
            results.append(f"cannot read: {error.strerror or error}")
    return results


class Uploads:
    """New and changed files to the server, in batches; a new file whose content a
    deleted file had is a rename instead (nothing is uploaded)."""

    def __init__(self, context: Context, report: Report, previous: Mapping[str, FileState],
                 deleted: dict[str, TrackedFile | None]):
        self.context, self.report, self.previous = context, report, previous
        self.by_content: dict[tuple, list[TrackedFile]] = {}
        for row in deleted.values():
            if row is not None and row.content_hash and row.revision is not None:
                self.by_content.setdefault((row.content_hash, row.exec), []).append(row)
        self.moved_away: set[str] = set()  # deleted paths whose file was renamed instead
        self.deferred: list[Prepared] = []
        self.batch = Batch(limit=FIRST_BATCH_FILES)

    async def run(self, changed: list[str], touched: dict[str, FileState]) -> None:
        context = self.context
        for start in range(0, len(changed), PREPARE_GROUP):
            group = changed[start:start + PREPARE_GROUP]
            for relpath, prepared in zip(group, await asyncio.to_thread(_prepare_many, context, group)):
                await self._add(relpath, prepared)
        for relpath, state in touched.items():
            row = context.state.get_file(relpath)
            if row is None:
                continue
            if state.mtime_ns == row.mtime_ns:  # same content and mtime, a new inode: only remember it
                context.state.put_file(dataclasses.replace(row, size=state.size, inode=state.inode))
                continue
            await self._queue(Prepared(relpath, context.path(relpath), state, list(row.chunks)), row.revision)
        await self._queue(None, None)

    async def run_deferred(self) -> None:
        """Commit the files that replace directories, once those are deleted on the server."""
        for prepared in self.deferred:
            if self.context.state.get_file(prepared.relpath) is None:
                await self._queue(prepared, None)
            else:
                self.report.pending += 1  # the directory is still there (held back, or refused)
        await self._queue(None, None)

    async def _add(self, relpath: str, prepared: Prepared | str | None) -> None:
        if isinstance(prepared, Prepared):
            sources = self.by_content.get((prepared.state.content_hash, prepared.state.mode_exec))
            if relpath not in self.previous and sources and await self._rename(sources.pop(), prepared):
                return
            row = self.context.state.get_file(relpath)
            if row is not None and row.kind == "dir":
                self.deferred.append(prepared)  # a file where a directory was: after the directory's delete
                return
            await self._queue(prepared, row.revision if row is not None else None)
        elif prepared == "unstable":
            self.report.pending += 1
            log.info("%s changed while being read; will upload once it settles", relpath)
        elif prepared is not None:
            self.context.problem(self.report, f"{relpath}: {prepared}")

    async def _rename(self, old: TrackedFile, prepared: Prepared) -> bool:
        """Move `old` to the prepared file's path on the server; False if the server refused."""
        context = self.context
        try:
            revision = await context.remote.rename(context.folder, old.relpath, prepared.relpath, old.revision,
                                                   context.device)
        except RemoteError as error:
            if error.status in (403, 507):
                _refused(context, self.report, prepared.relpath, prepared.state, error, "not moved on the server")
                return True
            return False  # changed on the server, or the target exists there: upload it instead
        context.state.delete_file(old.relpath)
        context.state.put_file(TrackedFile.from_state(prepared.relpath, prepared.state, revision["id"],
                                                      chunks=old.chunks))
        self.moved_away.add(old.relpath)
        self.report.other += 1
        log.info("moved %s -> %s", old.relpath, prepared.relpath)
        return True

    async def _queue(self, prepared: Prepared | None, base: int | None) -> None:
        """Add to the batch; send it when full (or at the end, `prepared` None)."""
        if prepared is not None:
            self.batch.add(prepared, base)
        if self.batch.items and (prepared is None or self.batch.full):
            await _flush(self.context, self.report, self.batch)
            self.batch = Batch()


async def _flush(context: Context, report: Report, batch: Batch) -> None:
    if not batch.items:
        return
    try:
        ready = await _send_chunks(context, report, batch)
        results = []
        for start in range(0, len(ready), 1000):
            results += await context.remote.commits(context.folder, [
                _commit_item(context, prepared, base) for prepared, base in ready[start:start + 1000]])
    except RemoteError as error:
        if error.status not in (403, 507):
            raise
        for prepared, _ in batch.items:
            _refused(context, report, prepared.relpath, prepared.state, error, "not uploaded")
        return
    rows = []
    for (prepared, _), result in zip(ready, results):
        if result["ok"]:
            rows.append(TrackedFile.from_state(prepared.relpath, prepared.state, result["revision"]["id"],
                                               chunks=prepared.chunks))
            report.uploaded += 1
            log.debug("uploaded %s", prepared.relpath)
        elif result["status"] in (403, 507):
            _refused(context, report, prepared.relpath, prepared.state,
                     RemoteError(result["status"], result["error"], result["reason"]), "not uploaded")
        else:
            report.pending += 1  # 409: changed on the server too (the next pull decides); 400: chunks gone
            log.info("%s: %s; will retry", prepared.relpath, result["reason"])
    context.state.put_files(rows)
    if len(batch.items) > 1 or batch.size > (8 << 20):
        log.info("uploaded %d files (%d bytes)", len(rows), sum(r.size for r in rows))


def _commit_item(context: Context, prepared: Prepared, base: int | None) -> dict:
    return {"path": prepared.relpath, "base_revision": base, "chunks": [list(c) for c in prepared.chunks],
            "size": prepared.size, "mtime_ns": prepared.state.mtime_ns, "executable": prepared.state.mode_exec,
            "device": context.device}


async def _send_chunks(context: Context, report: Report, batch: Batch) -> list[tuple[Prepared, int | None]]:
    """Upload what the server lacks, a few requests in flight; returns the files whose
    chunks are all there (a file that changed since it was cut is left for later)."""
    missing = await context.remote.missing(context.folder, [cid for p, _ in batch.items for cid, _ in p.chunks])
    progress = Progress("uploading", sum(n for p, _ in batch.items for cid, n in p.chunks if cid in missing))
    slots = asyncio.Semaphore(UPLOADS_IN_FLIGHT)
    sent: set[str] = set()
    ready = []
    pieces: list[tuple[str, bytes]] = []
    pieces_bytes = 0

    async def send(chunks: list[tuple[str, bytes]]) -> None:
        try:
            await context.remote.upload(chunks)
            progress.advance(sum(len(data) for _, data in chunks))
        finally:
            slots.release()

    try:
        async with asyncio.TaskGroup() as group:
            for prepared, base in batch.items:
                offset, whole = 0, True
                for cid, length in prepared.chunks:
                    if cid in missing and cid not in sent:
                        data = prepared.data.get(cid) or await asyncio.to_thread(
                            read_chunk, prepared.path, offset, length, cid, prepared.state)
                        if data is None:
                            whole = False
                            break
                        pieces.append((cid, data))
                        pieces_bytes += length
                        sent.add(cid)
                        report.sent_chunks += 1
                        report.sent_bytes += length
                        if pieces_bytes >= UPLOAD_BYTES:
                            await slots.acquire()
                            group.create_task(send(pieces))
                            pieces, pieces_bytes = [], 0
                    offset += length
                if whole:
                    ready.append((prepared, base))
                else:
                    report.pending += 1
                    log.info("%s changed while being uploaded; will upload once it settles", prepared.relpath)
            if pieces:
                await slots.acquire()
                group.create_task(send(pieces))
    except ExceptionGroup as failure:
        raise failure.exceptions[0] from None
    finally:
        progress.close()
    return ready


# --- deletes ------------------------------------------------------------------

DELETE_BATCH = 1000  # deletes per request, as many as the server takes in one


async def _judge_deletes(context: Context, report: Report, result: ScanResult, rows, tracked: int) -> None:
    """Send the folder's pending deletions, hold them back, or wait for them to settle.

    The guard sees every pending deletion of the folder at once. Above its limit they are
    held until the user answers (`hearth sync confirm-deletes|undo-deletes DIR`, or
    --confirm-deletes); below it they are sent once no new deletion has come for the
    settle window."""
    deletions, state = context.deletions, context.state
    deletions.discard([p for p in deletions.files if rows.get(p) is None or os.path.lexists(context.path(p))])
    tracked_dirs = state.directories()
    deletions.discard([d for d in deletions.dirs if d not in tracked_dirs or _is_directory(context.path(d))])
    files = sorted(p for p in deletions.files if p not in context.blocked)  # refused: reported, not judged
    dirs = sorted(deletions.dirs, key=_depth, reverse=True)
    if files or dirs:
        reason = deletion_guard(context.root, ScanResult(deleted=files, errors=result.errors), tracked)
        if reason and not context.confirm_deletes:
            held = hold.Hold(hold.hold_id([*files, *dirs]), len(files), tracked, reason, time.time())
            answered = hold.answer(state)
            if answered == (held.id, hold.UNDO):
                _undo_deletes(context, report, files, dirs)
                return
            if answered != (held.id, hold.CONFIRM):
                hold.record(state, held)
                context.problem(report, f"not deleting {len(files)} files on the server ({reason}); see "
                                        f"`hearth sync status {context.root}` to confirm or undo")
                return
            log.info("sending %d deletions the user confirmed", len(files))
        elif deletions.settle_in():
            report.settle_in = deletions.settle_in()
            return
    hold.clear(state)
    await _send_deletes(context, report, sorted(deletions.files), dirs, rows)


def _undo_deletes(context: Context, report: Report, files: list[str], dirs: list[str]) -> None:
    """Forget the held-back paths and read the server's journal again: the next pull brings them back."""
    context.state.delete_files([*files, *dirs])
    context.state.set_cursor(0)
    context.deletions.clear()
    hold.clear(context.state)
    report.other += len(files) + len(dirs)
    log.info("undoing %d held-back deletions: bringing the files back from the server", len(files))


async def _send_deletes(context: Context, report: Report, files: list[str], dirs: list[str], rows) -> None:
    """Delete these files, then these directories (deepest first), on the server, DELETE_BATCH a
    request; each against its base revision, and non-recursively, so nothing this device never saw
    is removed with a directory."""
    items: list[tuple[str, TrackedFile | None]] = []
    for relpath in files:
        row = rows.get(relpath)
        if row is None:
            continue
        if relpath in context.blocked:
            report.problems.append(context.blocked[relpath][1])
            continue
        items.append((relpath, row))
    items += [(relpath, context.state.get_file(relpath)) for relpath in dirs]
    for start in range(0, len(items), DELETE_BATCH):
        batch = items[start:start + DELETE_BATCH]
        try:
            results = await context.remote.deletes(context.folder, [
                {"path": relpath, "base_revision": row.revision if row else None, "device": context.device,
                 "recursive": False} for relpath, row in batch])
        except RemoteError as error:
            if error.status not in (403, 507):
                raise
            results = [{"ok": False, "status": error.status, "error": error.code, "reason": error.reason}] * len(batch)
        done = []
        for (relpath, row), outcome in zip(batch, results):
            is_dir = row is None or row.kind == "dir"
            if outcome["ok"]:
                done.append(relpath)
                report.deleted_remote += 1
                log.debug("deleted %s on the server", relpath)
            elif outcome["status"] in (403, 507):
                _refused(context, report, relpath, None, RemoteError(outcome["status"], outcome["error"],
                         outcome["reason"]), "not deleted on the server", block=not is_dir)
            elif outcome["status"] == 404 or is_dir:
                done.append(relpath)  # gone there too; a directory's 409: it holds files the pull brings
            else:
                report.pending += 1  # changed on the server: the next pull brings it back
        context.state.delete_files(done)
        context.deletions.discard([p for p, _ in batch if p not in context.blocked])  # refused: reported each cycle
