"""`hearth link …`: public share links to a user's files, from the server's shell.

Works on the database directly, like `hearth share`; the same rules as the
JSON API (/files/api/v1/links) apply. Kept light to import: services.cli
loads it for every command.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable

from services.core.errors import CommandError
from services.core.exitcodes import ExitStatus

TARGET_HELP = ("FOLDER or FOLDER/PATH: one of the user's folders (as `hearth sync` names it), "
               "optionally a file or directory inside it, e.g. Photos/2024/summer")


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the `link` command to the hearth CLI."""
    link = command(
        "link", "services.files.link_commands:run",
        "Make public share links to a user's files or folders (/s/TOKEN): optional password and expiry, "
        "read-only, read-write or upload-only; list them with their download counts; revoke them.",
        epilog="examples:\n"
               "  hearth link add alice Photos/2024/summer --expires 7d --label 'Summer photos'\n"
               "  printf 'secret words\\n' | hearth link add alice Documents/cv.pdf --password-stdin\n"
               "  hearth link add alice Inbox --mode upload-only --expires 2025-12-31\n"
               "  hearth link list alice\n"
               "  hearth link revoke alice 3")
    actions = link.add_subparsers(dest="link_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create a share link (its URL is printed)",
                             description="Create a share link; its path (/s/TOKEN) is printed alone on stdout.")
    add.add_argument("user", help="the owner of the folder")
    add.add_argument("target", metavar="FOLDER/PATH", help=TARGET_HELP)
    add.add_argument("--mode", choices=("read", "read-write", "upload-only"), default="read",
                     help="read: view and download; read-write: also upload new files; upload-only: a file "
                          "drop, visitors can upload but never list or download (default: read)")
    add.add_argument("--password-stdin", action="store_true",
                     help="protect the link with a password, read from the first line of stdin")
    add.add_argument("--expires", metavar="WHEN",
                     help="7d, 12h, 30m, 2w, a date (valid through that day, UTC) or an ISO date and time")
    add.add_argument("--label", default="", metavar="TEXT", help="shown on the public page")
    listing = actions.add_parser("list", help="list a user's links",
                                 description="List a user's links that are not revoked, with download counts. "
                                             "A link's URL is shown only when it is created: the server keeps "
                                             "only a hash, and lists its start (/s/Zq3v…) to tell links apart.")
    listing.add_argument("user")
    revoke = actions.add_parser("revoke", help="revoke a link (410 Gone at once)",
                                description="Revoke a link: its page answers 410 Gone from now on.")
    revoke.add_argument("user")
    revoke.add_argument("id", type=int, help="the id shown by `hearth link list`")


def run(args: argparse.Namespace) -> int:
    from services.core.command_support import as_command

    actions = {"add": _add, "list": _list, "revoke": _revoke}
    return as_command(actions[args.link_command], args)


def _add(args: argparse.Namespace) -> int:
    from services.core import accounts
    from services.core.command_support import database, require_user
    from services.core.db import write

    from services.core.share_links import create_link, parse_expiry

    folder_name, _, path = args.target.strip("/").partition("/")
    expires_at = parse_expiry(args.expires)
    password_hash = accounts.hash_password(_read_password()) if args.password_stdin else None
    with database(args) as db:
        owner = require_user(db, args.user)["name"]
        row = db.execute("SELECT id FROM folders WHERE owner = ? AND name = ? AND deleted_at IS NULL",
                         [owner, folder_name]).fetchone()
        if row is None:
            raise CommandError(f"{owner} has no folder named {folder_name!r}")
        link = write(db, lambda db: create_link(db, owner, row[0], path, mode=args.mode,
                                                password_hash=password_hash, expires_at=expires_at,
                                                label=args.label))
    print(f"/s/{link.token}")
    print(f"link {link.id}: {link.mode} {'folder' if link.is_dir else 'file'} {args.target}"
          + (f", expires {link.expires_at}" if link.expires_at else "")
          + (", password protected" if link.has_password else ""), file=sys.stderr)
    return ExitStatus.OK


def _read_password() -> str:
    line = sys.stdin.readline()
    if not line:
        raise CommandError("--password-stdin: stdin is empty; write the password as its first line",
                           ExitStatus.CONFIG)
    return line.rstrip("\r\n")  # only the line end: spaces belong to the password


def _list(args: argparse.Namespace) -> int:
    from services.core.accounts import now_iso
    from services.core.command_support import database, print_table, require_user

    from services.core.share_links import list_links

    with database(args) as db:
        found = list_links(db, require_user(db, args.user)["name"])
    if not found:
        print("no links")
        return ExitStatus.OK
    now = now_iso()
    print_table(("ID", "URL", "TARGET", "MODE", "PASSWORD", "EXPIRES", "DOWNLOADS", "LABEL"),
                [(str(link.id), link.shown_url, "/".join(filter(None, (link.folder_name, link.path))),
                  link.mode, "yes" if link.has_password else "no",
                  ("expired " if link.expires_at and link.expires_at <= now else "") + (link.expires_at or "never"),
                  str(link.downloads), link.label) for link in found])
    return ExitStatus.OK


def _revoke(args: argparse.Namespace) -> int:
    from services.core.command_support import database, require_user
    from services.core.db import write

    from services.core.share_links import revoke_link

    with database(args) as db:
        owner = require_user(db, args.user)["name"]
        write(db, lambda db: revoke_link(db, owner, args.id))
    print(f"link {args.id} of {owner} is revoked")
    return ExitStatus.OK
