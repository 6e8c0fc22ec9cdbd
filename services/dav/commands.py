"""`hearth dav …`: list and restore kept revisions of events, tasks and contacts, from the server's shell.

Works on the database directly, like `hearth user`; a restore is the same
change the JSON API (/dav/api/v1/revisions) makes, so DAV clients see it at
their next sync. Kept light to import: services.cli loads it for every command.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from services.core.exitcodes import ExitStatus

DEFAULT_LIMIT = 200
SUMMARY_WIDTH = 50


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the `dav` command to the hearth CLI."""
    dav = command(
        "dav", "services.dav.commands:run",
        "Bring back events, tasks and contacts that were changed or deleted, even with their whole calendar "
        "or address book, for [dav] keep_revisions_days days.",
        epilog="examples:\n"
               "  hearth dav revisions alice                       everything kept for alice, newest first\n"
               "  hearth dav revisions alice --collection work --deleted\n"
               "                                                   what was deleted from her calendar 'work'\n"
               "  hearth dav restore alice 42                      bring revision 42 back\n\n"
               "A restore is a new change that every DAV client picks up at its next sync. It goes back into\n"
               "its collection (created again if it was deleted); if another object took its name, it gets a\n"
               "new one: a restore never replaces a different event or contact.")
    actions = dav.add_subparsers(dest="dav_command", metavar="ACTION", required=True)
    listing = actions.add_parser(
        "revisions", help="list a user's kept revisions",
        description="List the revisions kept for a user's calendars and address books, newest first: "
                    "ID (for restore), when and why it was replaced, where it was, and its summary or name.")
    listing.add_argument("user")
    listing.add_argument("--collection", metavar="NAME",
                         help="only those of this calendar or address book (its name in the URL, e.g. calendar)")
    listing.add_argument("--deleted", action="store_true",
                         help="only deleted ones (alone or with their collection), not overwritten ones")
    listing.add_argument("--limit", type=int, default=DEFAULT_LIMIT, metavar="N",
                         help=f"show at most N (default {DEFAULT_LIMIT})")
    restore = actions.add_parser(
        "restore", help="bring a revision back",
        description="Make a kept revision current again and print where it went.")
    restore.add_argument("user")
    restore.add_argument("revision", type=int, metavar="REVISION_ID", help="an ID from hearth dav revisions")


def run(args: argparse.Namespace) -> int:
    from services.core.command_support import as_command

    actions = {"revisions": _revisions, "restore": _restore}
    return as_command(actions[args.dav_command], args)


def _revisions(args: argparse.Namespace) -> int:
    from services.core.command_support import database, print_table, require_user
    from services.core.errors import CommandError

    from .http.paths import HOME_OF
    from .store import list_revisions

    if args.limit < 1:
        raise CommandError(f"--limit: expected 1 or more, got {args.limit}", ExitStatus.CONFIG)
    with database(args) as db:
        user = require_user(db, args.user)["name"]
        found = list_revisions(db, user, collection=args.collection, deleted=args.deleted, limit=args.limit + 1)
    if not found:
        print(f"no kept revisions of {user}" + (f" in {args.collection!r}" if args.collection else ""))
        return ExitStatus.OK
    print_table(("ID", "WHEN (UTC)", "WHY", "ITEM", "SUMMARY"),
                 [(str(r.id), r.replaced_at[:19].replace("T", " "), r.reason,
                   f"{HOME_OF[r.kind]}/{r.collection_name}/{r.name}", _shorten(r.summary))
                  for r in found[:args.limit]])
    if len(found) > args.limit:
        print(f"only the newest {args.limit} shown; older ones with --limit", file=sys.stderr)
    return ExitStatus.OK


def _restore(args: argparse.Namespace) -> int:
    from services.core.command_support import database, require_user
    from services.core.db import write

    from .api.revisions import href_of
    from .store import restore_revision

    with database(args) as db:
        user = require_user(db, args.user)["name"]
        restored = write(db, lambda db: restore_revision(db, user, args.revision))
    where = href_of(restored)
    collection = restored.collection
    recreated = f"; {collection.kind} {collection.name!r} was created again" if restored.collection_recreated else ""
    if restored.outcome == "unchanged":
        print(f"revision {args.revision} already is the current version of {where}; nothing changed")
    elif restored.outcome == "replaced":
        print(f"restored revision {args.revision} as the current version of {where} "
              f"(the version it replaced is kept: hearth dav revisions {user}){recreated}")
    else:
        print(f"restored revision {args.revision} to {where}{recreated}")
    return ExitStatus.OK


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_WIDTH else text[:SUMMARY_WIDTH - 1] + "…"
