"""Deletions the mass-deletion guard held back, as recorded in DIR/.hearth for the user to answer.

The running client writes the hold (how many of how many files, why, and an id naming
exactly that set of paths); `hearth sync status` explains it; `hearth sync
confirm-deletes|undo-deletes DIR` record the user's answer for that id and wake the client,
which acts on it in its next cycle (or the next `hearth sync DIR` does). An answer given for
a set that has grown or shrunk since is not acted on: the user sees the new count and
answers again.
"""
from __future__ import annotations

import hashlib
import json
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable

from services.sync.client.state import ClientState

HOLD_KEY, ANSWER_KEY = "held_deletes", "deletes_answer"
CONFIRM, UNDO = "confirm", "undo"


@dataclass(frozen=True)
class Hold:
    id: str
    files: int      # files deleted here and held back
    tracked: int    # files the folder tracks
    reason: str
    since: float

    def lines(self, root: Path) -> list[str]:
        """What happened, how to confirm, how to undo: one line each, for `hearth sync status`."""
        where = shlex.quote(str(root))
        return [
            f"held back:    {self.reason} (since {time.strftime('%H:%M:%S', time.localtime(self.since))}); "
            "the server and your other devices still have them",
            f"to confirm:   hearth sync confirm-deletes {where}   (deletes them everywhere; the server keeps "
            f"them in its trash: hearth sync trash {where}, hearth sync restore {where} PATH)",
            f"to undo:      hearth sync undo-deletes {where}   (brings them back here from the server)",
        ]


def hold_id(relpaths: Iterable[str]) -> str:
    """Names exactly this set of paths."""
    digest = hashlib.sha256()
    for relpath in sorted(relpaths):
        digest.update(relpath.encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()[:16]


def current(state: ClientState) -> Hold | None:
    text = state.get_meta(HOLD_KEY)
    return Hold(**json.loads(text)) if text else None


def record(state: ClientState, hold: Hold) -> None:
    """Write the hold (keeping when it began if it is only growing)."""
    previous = current(state)
    if previous is not None:
        hold = Hold(hold.id, hold.files, hold.tracked, hold.reason, previous.since)
        if previous == hold:
            return
    state.set_meta(HOLD_KEY, json.dumps(asdict(hold)))


def clear(state: ClientState) -> None:
    for key in (HOLD_KEY, ANSWER_KEY):
        if state.get_meta(key) is not None:
            state.set_meta(key, None)


def answer(state: ClientState) -> tuple[str, str] | None:
    """(hold id, CONFIRM or UNDO) as the user last answered, or None."""
    text = state.get_meta(ANSWER_KEY)
    if not text:
        return None
    value = json.loads(text)
    return value["id"], value["action"]


def set_answer(state: ClientState, hold: Hold, action: str) -> None:
    state.set_meta(ANSWER_KEY, json.dumps({"id": hold.id, "action": action}))
