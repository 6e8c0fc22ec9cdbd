"""The daemon wrapper's state file: what a supervised service is doing, and why it stopped.

It sits next to the supervisor pid file (var/run/api.pid -> var/run/api.state),
is replaced atomically on every change, and outlives the wrapper so `status`
can say why a service is down.

Fields: name, supervisor_pid, child_pid, state, started_at, child_started_at,
restarts, last_exit, reason, next_start_at, log, updated_at (times are unix
seconds). `state` is one of STATES.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from services.core.private import FILE_MODE

STATES = ("starting", "running", "backoff", "stopping", "stopped", "gave-up", "exited")


def state_path(pidfile: str | os.PathLike) -> Path:
    """The state file that goes with a supervisor pid file: `.pid` becomes `.state`."""
    pidfile = Path(pidfile)
    if pidfile.suffix == ".pid":
        return pidfile.with_suffix(".state")
    return pidfile.with_name(pidfile.name + ".state")


def read_state(pidfile: str | os.PathLike) -> dict | None:
    """The last state the wrapper recorded for this pid file, or None if there is none."""
    try:
        with open(state_path(pidfile), encoding="utf-8") as handle:
            state = json.load(handle)
    except (FileNotFoundError, NotADirectoryError, ValueError):
        return None
    return state if isinstance(state, dict) else None


class StateFile:
    """Keeps the state file in step with the wrapper; `update` rewrites it atomically."""

    def __init__(self, pidfile: str | os.PathLike, **fields):
        self.path = state_path(pidfile)
        self.fields = {
            "name": None, "supervisor_pid": os.getpid(), "child_pid": None, "state": "starting",
            "started_at": time.time(), "child_started_at": None, "restarts": 0, "last_exit": None,
            "reason": None, "next_start_at": None, "log": None, "updated_at": None,
        }
        self.fields.update(fields)

    def update(self, **changes) -> None:
        """Apply `changes` and replace the file (temp file in the same directory, then rename)."""
        if changes.get("state", "starting") not in STATES:
            raise ValueError(f"unknown state {changes['state']!r}")
        self.fields.update(changes, updated_at=time.time())
        temp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE), "w",
                  encoding="utf-8") as handle:
            json.dump(self.fields, handle, indent=1)
            handle.write("\n")
        os.replace(temp, self.path)
