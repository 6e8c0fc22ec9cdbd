"""`hearth sync versions|restore|trash DIR …`: the server's memory of a synced folder, from the CLI.

They find the server, user and folder in DIR/.hearth (written by `hearth sync DIR`)
and take the password like the client does. A restore is a new revision on the
server (nothing is overwritten); the running client brings it to DIR, or the
next `hearth sync DIR`.
"""
from __future__ import annotations

import argparse
import asyncio
import time
from datetime import datetime
from pathlib import Path

from services.core.errors import CommandError, ConfigError
from services.sync.client.daemon import read_secret
from services.sync.client.remote import Remote, RemoteError, Unreachable
from services.sync.client.status import open_synced


def _folder(args: argparse.Namespace) -> tuple[Path, str, str, int, str]:
    """(root, server, user, folder id, relpath of args.path if given) from DIR's state."""
    root, state = open_synced(args.dir)
    try:
        server, user, folder = state.get_meta("server"), state.get_meta("user"), state.get_meta("folder_id")
    finally:
        state.close()
    if not (server and user and folder):
        raise ConfigError(f"{root} has not finished a first sync yet")
    relpath = ""
    if getattr(args, "path", None):
        target = Path(args.path)
        if target.is_absolute() or target.parts[:1] == ("..",):
            absolute = (Path.cwd() / target).absolute() if not target.is_absolute() else target
            try:
                relpath = absolute.relative_to(root).as_posix()
            except ValueError:
                raise ConfigError(f"{args.path} is not inside {root}") from None
        else:
            relpath = target.as_posix()
    return root, server, user, int(folder), relpath


def _run(args: argparse.Namespace, action) -> int:
    root, server, user, folder, relpath = _folder(args)
    secret = read_secret(args)

    async def main() -> int:
        async with Remote(server, user, secret) as remote:
            return await action(remote, folder, relpath)

    try:
        return asyncio.run(main())
    except Unreachable as error:
        raise CommandError(f"server unreachable: {error}") from None
    except RemoteError as error:
        if error.status == 401:
            raise ConfigError("the server refused the user name or password (401)") from None
        raise CommandError(f"server: {error}") from None


def _when(revision: dict) -> str:
    created = revision.get("created_at")
    if not created:
        return "-"
    stamp = datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _describe(revision: dict) -> str:
    if revision["deleted"]:
        return "deleted"
    return "directory" if revision["kind"] == "dir" else f"{revision['size']} bytes"


def run_versions(args: argparse.Namespace) -> int:
    async def action(remote: Remote, folder: int, relpath: str) -> int:
        versions = await remote.versions(folder, relpath)
        print(f"{'revision':>9}  {'when':19}  {'device':20}  what")
        for index, revision in enumerate(versions):
            mark = "  (current)" if index == 0 else ""
            print(f"{revision['id']:>9}  {_when(revision):19}  {revision['device'][:20]:20}  "
                  f"{_describe(revision)}{mark}")
        return 0

    return _run(args, action)


def run_trash(args: argparse.Namespace) -> int:
    async def action(remote: Remote, folder: int, relpath: str) -> int:
        items = await remote.trash(folder)
        if not items:
            print("the trash is empty")
            return 0
        print(f"{'deleted':19}  {'by':20}  {'last revision':>13}  path")
        for item in items:
            marker, last = item["deleted"], item["last"]
            print(f"{_when(marker):19}  {marker['device'][:20]:20}  "
                  f"{(str(last['id']) if last else 'expired'):>13}  {marker['path']}")
        return 0

    return _run(args, action)


def run_restore(args: argparse.Namespace) -> int:
    async def action(remote: Remote, folder: int, relpath: str) -> int:
        versions = await remote.versions(folder, relpath)
        if args.revision is not None:
            chosen = next((v for v in versions if v["id"] == args.revision), None)
            if chosen is None:
                raise CommandError(f"{relpath} has no revision {args.revision}; see `hearth sync versions`")
        else:  # the newest content that is not the current state
            chosen = next((v for v in versions[1:] if not v["deleted"] and v["kind"] == "file"), None)
            if chosen is None:
                raise CommandError(f"{relpath} has no earlier content to restore")
        restored = await remote.restore(folder, relpath, chosen["id"], args.device)
        print(f"restored {relpath} to the content of revision {chosen['id']} ({_when(chosen)}) as revision "
              f"{restored['id']}; a running `hearth sync` brings it to this directory")
        return 0

    return _run(args, action)

