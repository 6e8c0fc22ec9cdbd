"""`hearth user …` and `hearth token …`: accounts and app passwords from the shell.

Every form a script needs is non-interactive (--password-stdin, --yes); on a
terminal the commands prompt instead. argon2 and sqlite-utils are imported
inside the handlers: services.cli imports this module, and the resident daemon
wrapper imports services.cli, so this module must stay light.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

from .command_support import as_command, database, print_table, require_user
from .errors import CommandError
from .exitcodes import ExitStatus

ERASE_BATCH = 500  # chunks checked and erased per write transaction after a user is deleted


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the `user` and `token` commands to the hearth CLI."""
    user = command("user", "services.core.account_commands:run_user",
                   "Manage user accounts: add, list, passwd, email, del.")
    actions = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create a user", description="Create a user.")
    add.add_argument("name", help="user name: lowercase letters, digits, '.', '_', '-' (case-folded)")
    add.add_argument("--admin", action="store_true", help="make the user an administrator")
    add.add_argument("--email", action="append", default=[], metavar="ADDRESS",
                     help="an email address the user is invited by (repeatable); see `hearth user email`")
    _password_flag(add)
    actions.add_parser("list", help="list users", description="List users with their app password counts.")
    passwd = actions.add_parser("passwd", help="set a user's password", description="Set a user's password.")
    passwd.add_argument("name")
    _password_flag(passwd)
    email = actions.add_parser("email", help="add, remove or list a user's email addresses",
                               description="A user's email addresses: invitations to any of them reach the "
                                           "user's calendar. NAME@[dav] mail_domain is always one of them.")
    email.add_argument("name")
    email.add_argument("email_action", choices=("add", "remove", "list"), metavar="add|remove|list")
    email.add_argument("address", nargs="?", help="the address (add and remove), e.g. bob@example.org")
    delete = actions.add_parser("del", help="delete a user and all their data",
                                description="Delete a user and all their data (app passwords included).")
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="don't ask for confirmation (needed without a terminal)")

    token = command("token", "services.core.account_commands:run_token",
                    "Manage app passwords: per-device passwords for DAV, sync and scripts.")
    actions = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="create an app password (printed once on stdout)",
                             description="Create an app password; it is printed once, alone on stdout.")
    add.add_argument("user")
    add.add_argument("--label", required=True, metavar="DEVICE", help="what it is for, e.g. phone or laptop")
    listing = actions.add_parser("list", help="list a user's active app passwords")
    listing.add_argument("user")
    revoke = actions.add_parser("revoke", help="revoke an app password")
    revoke.add_argument("user")
    revoke.add_argument("id", type=int, help="the id shown by `hearth token list`")


def _password_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of stdin (for scripts)")


def run_user(args: argparse.Namespace) -> int:
    actions = {"add": _user_add, "list": _user_list, "passwd": _user_passwd, "email": _user_email,
               "del": _user_del}
    return as_command(actions[args.user_command], args)


def run_token(args: argparse.Namespace) -> int:
    actions = {"add": _token_add, "list": _token_list, "revoke": _token_revoke}
    return as_command(actions[args.token_command], args)


def _read_new_password(args: argparse.Namespace, name: str) -> str:
    from . import accounts

    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise CommandError("--password-stdin: stdin is empty; write the password as its first line",
                               ExitStatus.CONFIG)
        password = line.rstrip("\r\n")  # only the line end: spaces belong to the password
    elif sys.stdin.isatty():
        import getpass
        password = getpass.getpass(f"New password for {name}: ")
        if getpass.getpass("Repeat the password: ") != password:
            raise CommandError("the two passwords differ; nothing changed", ExitStatus.CONFIG)
    else:
        raise CommandError("stdin is not a terminal, so there is no way to prompt for a password: "
                           "use --password-stdin and write the password as the first line of stdin",
                           ExitStatus.CONFIG)
    accounts.check_password_rules(password)
    return password


def _user_add(args: argparse.Namespace) -> int:
    from . import accounts, addresses
    from .db import write

    with database(args) as db:
        name = accounts.normalize_name(args.name)
        if accounts.get_user(db, name) is not None:  # say so before asking for a password
            raise CommandError(f"user {name!r} already exists")
        domain = _mail_domain(args)
        emails = [addresses.registrable(db, name, email, domain)[0] for email in args.email]  # before the prompt
        password_hash = accounts.hash_password(_read_new_password(args, name))

        def create(db) -> None:
            accounts.create_user(db, name, password_hash, admin=args.admin)
            for email in emails:
                addresses.add_address(db, name, email, domain)

        write(db, create)
    print(f"created user {name}" + (" (admin)" if args.admin else "")
          + (f" with {', '.join(emails)}" if emails else ""))
    return ExitStatus.OK


def _user_email(args: argparse.Namespace) -> int:
    from . import addresses
    from .db import write

    domain = _mail_domain(args)
    with database(args) as db:
        name = require_user(db, args.name)["name"]
        if args.email_action == "list":
            for address in addresses.addresses_of(db, name, domain):
                print(address)
            return ExitStatus.OK
        if not args.address:
            raise CommandError(f"hearth user email {name} {args.email_action} needs the ADDRESS", ExitStatus.CONFIG)
        if args.email_action == "add":
            address, new = write(db, lambda db: addresses.add_address(db, name, args.address, domain))
            print(f"added {address} to {name}" if new else f"{address} is already an address of {name}")
        else:
            address = write(db, lambda db: addresses.remove_address(db, name, args.address, domain))
            print(f"removed {address} from {name}")
    return ExitStatus.OK


def _mail_domain(args: argparse.Namespace) -> str:
    from .config import load_config

    return load_config(args.config).dav.mail_domain


def _user_list(args: argparse.Namespace) -> int:
    from . import accounts

    with database(args) as db:
        users = accounts.list_users(db)
    print_table(("NAME", "ADMIN", "CREATED", "APP PASSWORDS"),
                 [(u["name"], "yes" if u["is_admin"] else "no", u["created_at"], str(u["app_passwords"]))
                  for u in users])
    if not users:
        print("no users yet: hearth user add NAME", file=sys.stderr)
    return ExitStatus.OK


def _user_passwd(args: argparse.Namespace) -> int:
    from . import accounts
    from .db import write

    with database(args) as db:
        name = require_user(db, args.name)["name"]
        password_hash = accounts.hash_password(_read_new_password(args, name))
        write(db, lambda db: accounts.set_password(db, name, password_hash))
    print(f"changed the password of {name}")
    return ExitStatus.OK


def _user_del(args: argparse.Namespace) -> int:
    from .db import write

    with database(args) as db:
        name = require_user(db, args.name)["name"]
        if not args.yes:
            if not sys.stdin.isatty():
                raise CommandError(f"not deleting {name!r} without confirmation: stdin is not a terminal, "
                                   "so pass --yes", ExitStatus.CONFIG)
            answer = input(f"Delete user {name} and all their data? This cannot be undone. [y/N] ")
            if answer.strip().lower() not in {"y", "yes"}:
                raise CommandError(f"kept user {name!r}")
        started = time.time()
        chunks = write(db, lambda db: _delete_user_listing_chunks(db, name))
        erased = _erase_chunks(args, db, chunks, started)
        _erase_unfinished_uploads(args, name)
    print(f"deleted user {name} ({erased} stored chunks erased)")
    return ExitStatus.OK


def _delete_user_listing_chunks(db, name: str) -> list[str]:
    """Delete the user; the chunks their files used, listed in the same transaction, are returned
    for erasing after the commit (services/core/tree/erase.py says why not before)."""
    from . import accounts
    from .tree.erase import chunks_of_user

    chunks = chunks_of_user(db, name)
    accounts.delete_user(db, name)
    return chunks


def _erase_unfinished_uploads(args: argparse.Namespace, name: str) -> None:
    """The chunks of uploads the user had not finished (services/files/upload_parts.py keeps them in
    var/uploads/USER/ until the final MOVE; left alone, its 24-hour expiry would remove them)."""
    import shutil

    from .config import load_config

    shutil.rmtree(load_config(args.config).data_path("uploads", name), ignore_errors=True)


def _erase_chunks(args: argparse.Namespace, db, chunks: list[str], started: float) -> int:
    """Erase the deleted user's chunks nothing else references, a batch per short write transaction."""
    from .config import load_config
    from .db import write
    from .blobs import open_blob_store
    from .tree.erase import erase_chunks

    store = open_blob_store(load_config(args.config))
    erased = 0
    for start in range(0, len(chunks), ERASE_BATCH):
        batch = chunks[start:start + ERASE_BATCH]
        erased += len(write(db, lambda db: erase_chunks(db, store, batch, started)))
    return erased


def _token_add(args: argparse.Namespace) -> int:
    from . import accounts
    from .db import write

    with database(args) as db:
        row, secret = write(db, lambda db: accounts.create_app_password(db, args.user, args.label))
    print(secret)  # alone on stdout, so `TOKEN=$(hearth token add …)` works
    print(f"app password {row['id']} ({row['label']}) for user {row['user']}: shown only this once; "
          f"use it as the password in your client", file=sys.stderr)
    return ExitStatus.OK


def _token_list(args: argparse.Namespace) -> int:
    from . import accounts

    with database(args) as db:
        rows = accounts.list_app_passwords(db, args.user)
    print_table(("ID", "LABEL", "CREATED", "LAST USED"),
                 [(str(r["id"]), r["label"], r["created_at"], r["last_used_at"] or "never") for r in rows])
    return ExitStatus.OK


def _token_revoke(args: argparse.Namespace) -> int:
    from . import accounts
    from .db import write

    with database(args) as db:
        write(db, lambda db: accounts.revoke_app_password(db, args.user, args.id))
    print(f"revoked app password {args.id} of {args.user}")
    return ExitStatus.OK
