"""`hearth sync confirm-deletes|undo-deletes DIR`: the user's answer to a held-back mass deletion.

No network and no password: the answer is written into DIR/.hearth for the client that
holds the deletions, which is woken with SIGUSR1 and acts at once (a client that is not
running acts on it when it next starts).
"""
from __future__ import annotations

import argparse
import os
import signal

from services.sync.client import hold
from services.sync.client.status import client_pid, open_synced


def _answer(args: argparse.Namespace, action: str) -> int:
    root, state = open_synced(args.dir)
    try:
        held = hold.current(state)
        if held is None:
            print(f"no deletions are held back in {root}")
            return 0
        hold.set_answer(state, held, action)
    finally:
        state.close()
    pid = client_pid(root)
    woken = False
    if pid and pid > 0:
        try:
            os.kill(pid, signal.SIGUSR1)
            woken = True
        except OSError:
            pass
    what = (f"deleting the {held.files} held-back files on the server and your other devices (the server "
            "keeps them in its trash)" if action == hold.CONFIRM
            else f"bringing the {held.files} held-back files back to {root} from the server")
    when = ("now" if woken else "at the running client's next full scan" if pid
            else "when `hearth sync` next runs on this directory")
    print(f"{what}: {when}; `hearth sync status {root}` shows the progress")
    return 0


def run_confirm(args: argparse.Namespace) -> int:
    return _answer(args, hold.CONFIRM)


def run_undo(args: argparse.Namespace) -> int:
    return _answer(args, hold.UNDO)
