"""`hearth sync DIR --server URL --user U …`: keep DIR and a server folder identical.

The client's state lives in DIR/.hearth/ (state.sqlite3, lock): it moves with
the folder, and if the folder's disk is unmounted the state goes with it, so
the client stops instead of mistaking an empty mount point for "delete
everything". One client per directory (a second one exits 3).

Running: a full sync at start, then cycles woken by the local watcher
(watchfiles, debounced), by the server's change feed (a long poll), and by a
periodic full scan as a safety net. When the server is away the client retries
with capped, jittered exponential backoff and says so once. `--once` runs
cycles until nothing is left to do, then exits 0 (in sync) or 1 (not: the
reasons are printed).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import random
import secrets
import signal
import sys
import time
from pathlib import Path

from services.core.errors import CommandError, ConfigError
from services.core.exitcodes import ExitStatus
from services.core.log import escape, setup_logging
from services.sync.client.context import STATE_FILE, Context, FolderGone, Report
from services.sync.client.engine import cycle
from services.sync.client.folder_events import (DELETED_STATE, FolderDeletedOnServer, bind_folder, deleted_line,
                                                follow_rename, is_folder_deleted)
from services.sync.client.ignore import STATE_DIR
from services.sync.client.localfs import TEMP_PREFIX
from services.sync.client.remote import Remote, RemoteError, Unreachable
from services.sync.client.state import ClientState

log = logging.getLogger("hearth.sync")

LOCK_FILE = "lock"
BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
LONG_POLL = 25.0
RETRY_PENDING = 1.0
ONCE_MAX_CYCLES = 60


def run(args: argparse.Namespace) -> int:
    setup_logging("debug" if args.verbose else "info")
    logging.getLogger("watchfiles").setLevel(logging.WARNING)
    root = Path(args.dir).expanduser().absolute()
    if not root.is_dir():
        raise ConfigError(f"{root} is not a directory")
    (root / STATE_DIR).mkdir(exist_ok=True)
    # the pid is in the lock file from here on: a SIGUSR1 from `hearth sync confirm-deletes` before
    # the runner listens for it (or under --once) must not end the client
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    with _lock(root):
        state = ClientState(root / STATE_DIR / STATE_FILE)
        try:
            server, user = _remembered(state, args, root)
            secret = read_secret(args)
            return asyncio.run(_main(args, root, state, server, user, secret))
        finally:
            state.close()


@contextlib.contextmanager
def _lock(root: Path):
    path = root / STATE_DIR / LOCK_FILE
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise CommandError(f"another hearth sync (pid {holder}) is already syncing {root}",
                               ExitStatus.ALREADY_RUNNING) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def _remembered(state: ClientState, args, root: Path) -> tuple[str, str]:
    """Server and user from the flags, checked against what DIR was synced with (the folder is checked
    against the server's, by id: see folder_events.bind_folder)."""
    remembered = {key: state.get_meta(key) for key in ("server", "user")}
    given = {"server": args.server and args.server.rstrip("/"), "user": args.user}
    for key, value in given.items():
        if value and remembered[key] and value != remembered[key]:
            raise ConfigError(f"{root} is synced with {key} {remembered[key]!r}, not {value!r}; "
                              "use another directory for another folder")
    server = given["server"] or remembered["server"]
    user = given["user"] or remembered["user"]
    if not server or not user:
        raise ConfigError("--server and --user are required the first time a directory is synced")
    if not server.startswith(("http://", "https://")):
        raise ConfigError(f"--server must be an http:// or https:// URL, not {server!r}")
    return server, user


def read_secret(args) -> str:
    if args.password_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    elif args.token_file:
        try:
            secret = Path(args.token_file).read_text().strip()
        except OSError as error:
            raise ConfigError(f"--token-file {args.token_file}: {error.strerror or error}") from None
    else:
        raise ConfigError("give --password-stdin or --token-file")
    if not secret:
        raise ConfigError("the password is empty")
    return secret


async def _main(args, root: Path, state: ClientState, server: str, user: str, secret: str) -> int:
    async with Remote(server, user, secret) as remote:
        folder, folder_name = await _with_backoff(
            lambda: bind_folder(remote, state, user, args.folder, root.name), once=args.once)
        _remember(state, server, user, folder_name, folder, args.device)
        # --once sees the whole folder in one scan: nothing to wait for
        context = Context(root, state, remote, folder, args.device, confirm_deletes=args.confirm_deletes,
                          settle=0.0 if args.once else args.delete_settle)
        log.info("syncing %s with folder %s (id %d) on %s as %s", root, folder_name, folder, server, args.device)
        if args.once:
            return await _once(context)
        return await Runner(context, args).run()


def _remember(state: ClientState, server: str, user: str, folder_name: str, folder: int, device: str) -> None:
    known = state.get_meta("folder_id")
    if known is not None and int(known) != folder:
        raise ConfigError(f"the server folder {folder_name!r} is not the one this directory was synced with "
                          f"(id {folder}, was {known}); use another directory")
    for key, value in (("server", server), ("user", user), ("folder", folder_name), ("folder_id", str(folder))):
        if state.get_meta(key) != value:
            state.set_meta(key, value)
    device_id, device_name = state.device()
    if device_id is None or device_name != device:
        state.set_device(device_id or secrets.token_hex(8), device)


async def _with_backoff(action, *, once: bool, attempts_once: int = 5):
    """Run `action` until the server answers; RemoteError 401 is a configuration error."""
    delay, attempt = BACKOFF_START, 0
    while True:
        try:
            return await action()
        except Unreachable as error:
            attempt += 1
            if once and attempt >= attempts_once:
                raise CommandError(f"server unreachable: {error}") from None
            if attempt == 1:
                log.warning("server unreachable (%s); retrying with backoff", error)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, BACKOFF_MAX)
        except RemoteError as error:
            if error.status == 401:
                raise ConfigError("the server refused the user name or password (401)") from None
            if is_folder_deleted(error):
                raise FolderDeletedOnServer(error.reason) from None
            raise CommandError(f"server: {error}") from None


async def _once(context: Context) -> int:
    """Cycles until one changes nothing and leaves nothing pending (or only problems)."""
    report, total = Report(), Report()
    for _ in range(ONCE_MAX_CYCLES):
        try:
            report = await _with_backoff(lambda: cycle(context, None), once=True)
        except FolderGone as error:
            raise CommandError(str(error)) from None
        except FolderDeletedOnServer as error:
            line = deleted_line(context.state.get_meta("folder"), str(error))
            _record_status(context, Report(), DELETED_STATE, line)
            raise CommandError(line) from None
        total.add(report)
        _record_status(context, report, "syncing")
        if not report.changed and not report.pending:
            break
        if not report.changed:
            await asyncio.sleep(RETRY_PENDING / 2)
    in_sync = not report.changed and not report.pending and not report.problems
    _record_status(context, report, "in sync" if in_sync else "not in sync")
    log.info("%s: %s", "in sync" if in_sync else "not in sync", total.summary())
    if in_sync:
        return 0
    for problem in report.problems:
        print(f"hearth sync: {escape(problem, quotes=False)}", file=sys.stderr)  # a file name may hold anything
    if report.pending:
        print(f"hearth sync: not in sync: {report.pending} change(s) still pending", file=sys.stderr)
    return int(ExitStatus.ERROR)


def _record_status(context: Context, report: Report, state: str, error: str | None = None) -> None:
    """What `hearth sync status` shows: written after every cycle."""
    status = {"state": state, "pid": os.getpid(), "updated": time.time(), "pending": report.pending,
              "problems": sorted(set(report.problems))[:20], "error": error,
              "last": {"uploaded": report.uploaded, "downloaded": report.downloaded,
                       "deleted_remote": report.deleted_remote, "deleted_local": report.deleted_local}}
    if state == "in sync":
        status["in_sync_at"] = time.time()
    else:
        previous = context.state.get_meta("status")
        if previous:
            with contextlib.suppress(ValueError):
                status["in_sync_at"] = json.loads(previous).get("in_sync_at")
    context.state.set_meta("status", json.dumps(status))
    context.state.set_last_error(error or (report.problems[0] if report.problems else None))


class Runner:
    """The long-running client: one worker running cycles, woken by three sources."""

    def __init__(self, context: Context, args):
        self.context = context
        self.args = args
        self.wake = asyncio.Event()
        self.hints: set[str] | None = None  # None: the next cycle scans everything
        self.cycled = asyncio.Event()
        self.stopping = asyncio.Event()
        self.folder_deleted = False
        self.settle_timer: asyncio.TimerHandle | None = None

    def _stop_for_deleted_folder(self, error: RemoteError) -> None:
        """Sync nothing and delete nothing here; the change-feed watcher's retries wake the worker, so
        syncing resumes on its own once the folder is restored."""
        line = deleted_line(self.context.state.get_meta("folder"), error.reason)
        if not self.folder_deleted:
            log.warning("%s", line)
        self.folder_deleted = True
        _record_status(self.context, Report(), DELETED_STATE, line)
        self.hints = None

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stopping.set)
        # `hearth sync confirm-deletes|undo-deletes DIR` answered a held-back deletion
        loop.add_signal_handler(signal.SIGUSR1, self._schedule, set())
        tasks = [asyncio.create_task(self._worker()), asyncio.create_task(self._remote_watcher()),
                 asyncio.create_task(self._ticker())]
        if not self.args.no_watch:
            tasks.append(asyncio.create_task(self._local_watcher()))
        self.wake.set()
        stop = asyncio.create_task(self.stopping.wait())
        done, _ = await asyncio.wait([stop, tasks[0]], return_when=asyncio.FIRST_COMPLETED)
        for task in tasks + [stop]:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        log.info("stopped")
        failure = results[0]
        if isinstance(failure, BaseException) and not isinstance(failure, asyncio.CancelledError):
            raise failure
        return 0

    def _schedule(self, hints: set[str] | None) -> None:
        if hints is None:
            self.hints = None
        elif self.hints is not None:
            self.hints |= hints
        self.wake.set()

    async def _worker(self) -> None:
        delay = BACKOFF_START
        offline = False
        while True:
            await self.wake.wait()
            self.wake.clear()
            hints, self.hints = self.hints, set()
            try:
                report = await cycle(self.context, hints)
            except Unreachable as error:
                if not offline:
                    log.warning("server unreachable (%s); retrying with backoff", error)
                    _record_status(self.context, Report(), "offline", f"server unreachable: {error}")
                offline = True
                self.hints = None
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, BACKOFF_MAX)
                self.wake.set()
                continue
            except FolderGone as error:
                log.error("%s", error)
                _record_status(self.context, Report(), "stopped", str(error))
                self.hints = None
                await asyncio.sleep(self.args.scan_interval)
                self.wake.set()
                continue
            except RemoteError as error:
                if error.status == 401:
                    raise ConfigError("the server refused the user name or password (401)") from None
                if is_folder_deleted(error):
                    self._stop_for_deleted_folder(error)
                    continue
                log.error("server refused: %s", error)
                _record_status(self.context, Report(), "error", str(error))
                self.hints = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)
                self.wake.set()
                continue
            if offline:
                log.info("server reachable again")
            if self.folder_deleted:
                log.info("the server folder %r is back; syncing %s again", self.context.state.get_meta("folder"),
                         self.context.root)
                self.folder_deleted = False
            offline, delay = False, BACKOFF_START
            busy = report.changed or report.pending or report.settle_in
            clean = not report.pending and not report.problems and not report.settle_in
            _record_status(self.context, report, "in sync" if clean and not report.changed else
                           "syncing" if busy else "not in sync")
            if report.transferred:
                log.info("synced: %s", report.summary())
            elif report.changed:
                log.debug("synced: %s", report.summary())
            self.cycled.set()
            if report.settle_in:  # pending deletions are judged once the spree has settled
                if self.settle_timer is not None:
                    self.settle_timer.cancel()
                self.settle_timer = asyncio.get_running_loop().call_later(report.settle_in, self._schedule, set())
            if report.changed:
                self._schedule(set())  # one more pass: what we did may have woken nothing else
            elif report.pending:
                asyncio.get_running_loop().call_later(RETRY_PENDING, self._schedule, None)

    async def _remote_watcher(self) -> None:
        """Long-poll the change feed from the cursor; a change wakes the worker."""
        delay = BACKOFF_START
        context = self.context
        while True:
            cursor = context.state.cursor or 0
            try:
                page = await context.remote.changes(context.folder, cursor, limit=1, wait=LONG_POLL)
                follow_rename(context, page.get("folder"))
                delay = BACKOFF_START
            except (Unreachable, RemoteError):
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, BACKOFF_MAX)
                self._schedule(None)
                continue
            if page["changes"]:
                self.cycled.clear()
                self._schedule(set())
                await self.cycled.wait()  # the worker moves the cursor before we poll again

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.args.scan_interval)
            self._schedule(None)

    async def _local_watcher(self) -> None:
        from watchfiles import awatch

        root = self.context.root
        prefix = str(root) + os.sep

        def interesting(_change, path: str) -> bool:
            relpath = path[len(prefix):].replace(os.sep, "/") if path.startswith(prefix) else ""
            return bool(relpath) and relpath != STATE_DIR and not relpath.startswith(STATE_DIR + "/") \
                and not os.path.basename(path).startswith(TEMP_PREFIX)

        try:
            async for changes in awatch(root, watch_filter=interesting, debounce=self.args.debounce, step=20,
                                        recursive=True, stop_event=self.stopping):
                self._schedule({path[len(prefix):].replace(os.sep, "/") for _, path in changes})
        except Exception as error:  # no inotify watches left, unsupported file system, ...
            log.warning("file watcher stopped (%s); relying on scans every %.0f s", error, self.args.scan_interval)
