"""`hearth share …`: share calendars and address books between users, from the server's shell.

Works on the database directly, like `hearth user`; the same rules as the
JSON API (/dav/api/v1/shares) and CalendarServer sharing apply. Kept light
to import: services.cli loads it for every command.
"""
from __future__ import annotations

import argparse
from typing import Callable

from services.core.errors import CommandError
from services.core.exitcodes import ExitStatus

COLLECTION_HELP = ("the collection as its URL names it under /dav/: calendars/OWNER/NAME or "
                   "addressbooks/OWNER/NAME (e.g. calendars/alice/calendar)")


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the `share` command to the hearth CLI."""
    share = command(
        "share", "services.dav.share_commands:run",
        "Share a calendar or address book with another user, read-only or read-write; it appears in their "
        "home (as NAME_shared_by_OWNER) and their DAV clients find it without setup.",
        epilog="examples:\n"
               "  hearth share add calendars/alice/family bob --mode read-write\n"
               "  hearth share add addressbooks/alice/contacts bob          (read-only)\n"
               "  hearth share list alice\n"
               "  hearth share remove calendars/alice/family bob")
    actions = share.add_subparsers(dest="share_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="share a collection (or change the mode of a share)",
                             description="Share a collection with a user, or change the mode of a share.")
    add.add_argument("collection", help=COLLECTION_HELP)
    add.add_argument("user", help="the user to share it with")
    add.add_argument("--mode", choices=("read", "read-write"), default="read",
                     help="read: see it; read-write: also add, change and delete its items (default: read)")
    remove = actions.add_parser("remove", help="stop sharing a collection with a user",
                                description="Stop sharing; it leaves the user's home at once.")
    remove.add_argument("collection", help=COLLECTION_HELP)
    remove.add_argument("user")
    listing = actions.add_parser("list", help="list shares",
                                 description="List every share, or those a user gives or receives.")
    listing.add_argument("user", nargs="?", help="only shares this user gives or receives")


def run(args: argparse.Namespace) -> int:
    from services.core.command_support import as_command

    actions = {"add": _add, "remove": _remove, "list": _list}
    return as_command(actions[args.share_command], args)


def _add(args: argparse.Namespace) -> int:
    from services.core.command_support import database
    from services.core.db import write

    from .store.sharing import grant

    owner, kind, name = _collection(args.collection)
    with database(args) as db:
        share = write(db, lambda db: grant(db, owner, kind, name, args.user, args.mode))
    print(f"{args.collection} is shared {share.mode} with {share.grantee}: "
          f"/dav/{args.collection.split('/')[0]}/{share.grantee}/{share.mount}/")
    return ExitStatus.OK


def _remove(args: argparse.Namespace) -> int:
    from services.core.command_support import database
    from services.core.db import write

    from .store.sharing import revoke

    owner, kind, name = _collection(args.collection)
    with database(args) as db:
        write(db, lambda db: revoke(db, owner, kind, name, args.user))
    print(f"{args.collection} is no longer shared with {args.user}")
    return ExitStatus.OK


def _list(args: argparse.Namespace) -> int:
    from services.core.command_support import database, print_table

    from .http.paths import HOME_OF
    from .store.sharing import grants

    with database(args) as db:
        found = grants(db, args.user)
    if not found:
        print("no shares")
        return ExitStatus.OK
    print_table(("COLLECTION", "USER", "MODE"),
                 [(f"{HOME_OF[g.kind]}/{g.owner}/{g.collection}", g.grantee, g.mode) for g in found])
    return ExitStatus.OK


def _collection(text: str) -> tuple[str, str, str]:
    """(owner, kind, name) from calendars/OWNER/NAME; CommandError otherwise."""
    from .http.paths import HOMES

    parts = text.strip("/").split("/")
    if parts and parts[0] == "dav":
        parts = parts[1:]
    if len(parts) != 3 or parts[0] not in HOMES or not all(parts):
        raise CommandError(f"{text!r} is not calendars/OWNER/NAME or addressbooks/OWNER/NAME", ExitStatus.CONFIG)
    return parts[1], HOMES[parts[0]], parts[2]
