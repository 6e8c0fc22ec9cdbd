"""`hearth sync status DIR`: one screen of truth about a synced directory.

Read from the directory itself, without the network: the client's own record
of its last cycle (state, pending work, problems), whether a client holds the
directory's lock right now, and a metadata-only look at the disk (nothing is
read or hashed) for local changes not synced yet. Deletions the mass-deletion
guard holds back are explained in three lines: what happened, how to confirm,
how to undo.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import time
from pathlib import Path

from services.core.errors import ConfigError
from services.core.exitcodes import ExitStatus
from services.sync.client import hold
from services.sync.client.context import STATE_FILE
from services.sync.client.daemon import LOCK_FILE
from services.sync.client.folder_events import DELETED_STATE
from services.sync.client.ignore import STATE_DIR, IgnoreRules
from services.sync.client.scan import scan
from services.sync.client.state import ClientState


def open_synced(directory: str) -> tuple[Path, ClientState]:
    """A synced directory's root and state; ConfigError (exit 2) if `hearth sync` never ran there."""
    root = Path(directory).expanduser().absolute()
    state_path = root / STATE_DIR / STATE_FILE
    if not state_path.is_file():
        raise ConfigError(f"{root} is not synced by hearth (no {STATE_DIR}/{STATE_FILE}); run `hearth sync` first")
    return root, ClientState(state_path)


def run(args: argparse.Namespace) -> int:
    root, state = open_synced(args.dir)
    try:
        lines, in_sync = describe(root, state)
    finally:
        state.close()
    print("\n".join(lines))
    return 0 if in_sync else int(ExitStatus.ERROR)


def client_pid(root: Path) -> int | None:
    """The pid of the client holding the directory's lock, or None if none runs."""
    try:
        handle = open(root / STATE_DIR / LOCK_FILE, "r")
    except FileNotFoundError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = handle.read().strip()
            return int(text) if text.isdigit() else -1
        return None


def _ago(stamp: float | None) -> str:
    if not stamp:
        return "never"
    seconds = int(time.time() - stamp)
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))
    if seconds < 120:
        return f"{when} ({seconds} s ago)"
    if seconds < 7200:
        return f"{when} ({seconds // 60} min ago)"
    return f"{when} ({seconds // 3600} h ago)"


def describe(root: Path, state: ClientState) -> tuple[list[str], bool]:
    status = json.loads(state.get_meta("status") or "{}")
    pid = client_pid(root)
    local = scan(root, IgnoreRules.load(root), state.file_states(), quick=True)
    tracked_dirs = state.directories()
    up = len(local.changed) + len(set(local.dirs) - tracked_dirs)
    deletes = len(local.deleted) + len([d for d in tracked_dirs if d not in local.dirs])
    waiting = max(state.pending_count(), int(status.get("pending") or 0))
    problems = status.get("problems") or []
    pending = up + deletes + waiting
    if status.get("state") == DELETED_STATE:  # its own line says what happened and how to undo it
        summary = status.get("error") or DELETED_STATE
    elif pending:
        parts = [f"{n} {what}" for n, what in ((up, "to upload"), (deletes, "to delete on the server"),
                                               (waiting, "waiting to be retried")) if n]
        summary = f"{pending} pending ({', '.join(parts)})"
    elif problems:
        summary = f"not in sync: {len(problems)} problem(s)"
    elif status.get("state") in ("in sync", "syncing"):
        summary = "in sync"
    else:
        summary = f"not in sync: {status.get('state') or 'never synced'}"
    in_sync = summary == "in sync"
    lines = [
        f"folder:       {state.get_meta('folder')} on {state.get_meta('server')} as {state.get_meta('user')} "
        f"(device {state.device()[1]})",
        f"directory:    {root} ({state.file_count()} files tracked, server cursor {state.cursor or 0})",
        f"client:       {f'running (pid {pid})' if pid else 'not running'}",
        f"state:        {summary}",
        f"last in sync: {_ago(status.get('in_sync_at'))}",
        f"last error:   {'see state' if status.get('state') == DELETED_STATE else status.get('error') or state.last_error or 'none'}",
    ]
    if not pid and in_sync:
        lines[3] = "state:        in sync as of the last run (no client is running to see server changes)"
    held = hold.current(state)
    if held is not None and deletes:  # (a hold the files came back from is old news)
        in_sync = False
        lines += held.lines(root)
        problems = [p for p in problems if not p.startswith("not deleting ")]  # said above, in three lines
    lines += [f"problem:      {p}" for p in problems[:10]]
    if len(problems) > 10:
        lines.append(f"              ... and {len(problems) - 10} more")
    return lines, in_sync
