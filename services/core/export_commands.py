"""`hearth export USER DIR`: a user's files, calendars, contacts and shares as ordinary files.

Runs on the server, on the database and the blob store, like `hearth user`.
Kept light to import (services.cli imports it): the work is in services.core.export.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from .command_support import ProgressBars, as_command, database, require_user
from .exitcodes import ExitStatus

BAR_ABOVE = 8 << 20  # exports smaller than this finish before a bar would help


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the `export` command to the hearth CLI."""
    export = command(
        "export", "services.core.export_commands:run",
        "Write everything a user has into a new or empty directory: files/, calendars/*.ics, "
        "contacts/*.vcf, shares.json and manifest.json (sizes and SHA-256 of every file).",
        epilog="Refuses a directory that holds anything, and never overwrites a file. Reads one consistent\n"
               "snapshot while the daemons keep running. Only current files are exported, not kept versions\n"
               "or the trash. manifest.json is written last: without it, the export did not finish.")
    export.add_argument("user", help="the user whose data to export")
    export.add_argument("dir", help="where to write it: created if missing, must be empty otherwise")


def run(args: argparse.Namespace) -> int:
    return as_command(_export, args)


def _export(args: argparse.Namespace) -> int:
    from .config import load_config
    from .export import export_user
    from .blobs import open_blob_store

    store = open_blob_store(load_config(args.config))
    bars = ProgressBars("export", above=BAR_ABOVE)
    with database(args) as db:
        name = require_user(db, args.user)["name"]
        try:
            manifest = export_user(db, store, name, Path(args.dir), progress=bars.start)
        finally:
            bars.close()
    counts = manifest["counts"]
    print(f"exported {name} to {args.dir}: {counts['files']} files in {counts['folders']} folders, "
          f"{counts['calendars']} calendars ({counts['calendar_objects']} items), "
          f"{counts['address_books']} address books ({counts['cards']} cards), "
          f"{manifest['total_bytes']} bytes")
    return ExitStatus.OK
