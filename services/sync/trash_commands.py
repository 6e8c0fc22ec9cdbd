"""`hearth trash …`: the mass deletions WebDAV and Nextcloud clients made, and their undo, from the
server's shell.

Works on the database directly, like `hearth folder`; the same rules as the sync API
(GET /sync/v1/mass-deletions, POST /sync/v1/mass-deletions/{id}/undo) apply, see
services/core/tree/deletion_runs.py. Kept light to import: services.cli loads it for every command.
"""
from __future__ import annotations

import argparse
from typing import Callable

from services.core.exitcodes import ExitStatus


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the `trash` command to the hearth CLI."""
    trash = command(
        "trash", "services.sync.trash_commands:run",
        "Show and undo mass deletions: a Nextcloud app or WebDAV client that deletes more than 10 files and "
        "more than half of a folder in one go (each deletion within a minute of the last). The files are in "
        "the trash; undo brings back exactly those files, with their content and file ids.",
        epilog="examples:\n"
               "  hearth trash list alice\n"
               "  hearth trash undo alice 7\n\n"
               "undo changes nothing (exit 1) when a file lives at any of the paths again: it never overwrites;\n"
               "move that file away and undo again. Single files come back with `hearth sync restore` or the web UI.")
    actions = trash.add_subparsers(dest="trash_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list a user's mass deletions",
                                 description="List the mass deletions a user made or that hit their folders, "
                                             "newest first.")
    listing.add_argument("user")
    undo = actions.add_parser("undo", help="restore every file of a mass deletion",
                              description="Restore every file of one mass deletion from the trash, all or none.")
    undo.add_argument("user")
    undo.add_argument("id", type=int, help="the mass deletion's id, as `hearth trash list` shows it")


def run(args: argparse.Namespace) -> int:
    from services.core.command_support import as_command

    return as_command({"list": _list, "undo": _undo}[args.trash_command], args)


def _when(moment: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _list(args: argparse.Namespace) -> int:
    from services.core.command_support import database, print_table, require_user
    from services.core.tree.deletion_runs import mass_deletions

    with database(args) as db:
        found = mass_deletions(db, require_user(db, args.user)["name"])
    if not found:
        print(f"no mass deletions by or of {args.user}")
        return ExitStatus.OK
    rows = [(str(run.id), _when(run.started_at), run.folder, run.user, run.device, f"{run.files} of {run.tracked}",
             f"undone {_when(run.undone_at)}" if run.undone_at else f"undo: hearth trash undo {args.user} {run.id}")
            for run in found]
    print_table(("ID", "WHEN", "FOLDER", "BY", "DEVICE", "FILES", "STATE"), rows)
    return ExitStatus.OK


def _undo(args: argparse.Namespace) -> int:
    from services.core.command_support import database, require_user
    from services.core.config import load_config
    from services.core.db import write
    from services.core.tree import quota_bytes
    from services.core.tree.deletion_runs import undo_run

    quota = quota_bytes(load_config(args.config))
    with database(args) as db:
        user = require_user(db, args.user)["name"]
        run = write(db, lambda db: undo_run(db, user, args.id, quota=quota))
    print(f"restored {run.files} files to folder {run.folder!r} (mass deletion {run.id}: {run.summary})")
    return ExitStatus.OK
