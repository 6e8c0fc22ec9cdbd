"""`hearth folder …`: list, rename, delete (to the trash) and restore a user's synced folders, from the
server's shell.

Works on the database directly, like `hearth link`; the same rules as the sync
API (PATCH/DELETE /sync/v1/folders/{id}, /sync/v1/deleted-folders) apply, and
running devices follow within a moment (see services/core/tree/lifecycle.py).
Kept light to import: services.cli loads it for every command.
"""
from __future__ import annotations

import argparse
from typing import Callable

from services.core.exitcodes import ExitStatus


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the `folder` command to the hearth CLI."""
    folder = command(
        "folder", "services.sync.folder_commands:run",
        "List, rename, delete and restore a user's synced folders (the top level of /files/USER/). A deleted "
        "folder goes to the user's trash: devices stop syncing it and keep their copies, its shares end; "
        "restore brings it back as it was until [sync] keep_versions_days runs out.",
        epilog="examples:\n"
               "  hearth folder list alice\n"
               "  hearth folder mv alice Fotos Photos\n"
               "  hearth folder rm alice litmus\n"
               "  hearth folder restore alice litmus [--as litmus-old]")
    actions = folder.add_subparsers(dest="folder_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="list a user's folders and deleted folders",
                                 description="List a user's folders, then those in their trash.")
    listing.add_argument("user")
    move = actions.add_parser("mv", help="rename a folder",
                              description="Rename a folder; shares, links and every device carry on. Fails "
                                          "(exit 1) if the user has a folder by the new name: never a merge.")
    move.add_argument("user")
    move.add_argument("name")
    move.add_argument("new_name", metavar="NEW_NAME")
    remove = actions.add_parser("rm", help="delete a folder to the trash",
                                description="Delete a folder to the user's trash (restorable).")
    remove.add_argument("user")
    remove.add_argument("name")
    restore = actions.add_parser("restore", help="restore a deleted folder",
                                 description="Restore the most recently deleted folder by that name, with its "
                                             "files, shares and links.")
    restore.add_argument("user")
    restore.add_argument("name")
    restore.add_argument("--as", dest="new_name", metavar="NEW_NAME",
                         help="restore under this name (when a folder by the old one exists again)")


def run(args: argparse.Namespace) -> int:
    from services.core.command_support import as_command

    actions = {"list": _list, "mv": _move, "rm": _remove, "restore": _restore}
    return as_command(actions[args.folder_command], args)


def _change(args: argparse.Namespace, fn) -> None:
    """Run `fn(db, owner, quota)` in one write transaction."""
    from services.core.command_support import database, require_user
    from services.core.config import load_config
    from services.core.db import write
    from services.core.tree import quota_bytes

    quota = quota_bytes(load_config(args.config))
    with database(args) as db:
        owner = require_user(db, args.user)["name"]
        return write(db, lambda db: fn(db, owner, quota))


def _move(args: argparse.Namespace) -> int:
    from services.core.tree import folder_by_name, rename_folder

    folder = _change(args, lambda db, owner, _quota: rename_folder(db, owner, folder_by_name(db, owner, args.name),
                                                           args.new_name))
    print(f"folder {folder.id} of {folder.owner} is now called {folder.name!r}")
    return ExitStatus.OK


def _remove(args: argparse.Namespace) -> int:
    from services.core.tree import delete_folder, folder_by_name

    deleted = _change(args, lambda db, owner, _quota: delete_folder(db, owner, folder_by_name(db, owner, args.name)))
    print(f"deleted folder {deleted.name!r} ({deleted.files} files, {deleted.size} bytes) to the trash; "
          f"undo with: hearth folder restore {args.user} {deleted.name}")
    return ExitStatus.OK


def _restore(args: argparse.Namespace) -> int:
    from services.core.tree import folder_by_name, restore_folder

    folder = _change(args, lambda db, owner, quota: restore_folder(
        db, owner, folder_by_name(db, owner, args.name, deleted=True), args.new_name, quota=quota))
    print(f"restored folder {folder.name!r} (id {folder.id})")
    return ExitStatus.OK


def _list(args: argparse.Namespace) -> int:
    from services.core.command_support import database, print_table, require_user
    from services.core.tree import deleted_folders, list_folders

    with database(args) as db:
        owner = require_user(db, args.user)["name"]
        live = [f for f in list_folders(db, owner) if f.access == "owner"]
        gone = deleted_folders(db, owner)
    rows = [(str(f.id), f.name, "", "") for f in live]
    rows += [(str(f.id), f.name, f"deleted {f.deleted_at[:16].replace('T', ' ')} UTC",
              f"{f.files} files, {f.size} bytes") for f in gone]
    print_table(("ID", "NAME", "STATE", "HELD"), rows)
    return ExitStatus.OK
