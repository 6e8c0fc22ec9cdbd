"""The flags of `hearth sync DIR` and `hearth sync status DIR`, kept apart from the client so
building the CLI's parser imports no network code."""
from __future__ import annotations

import argparse
import socket

from services.sync.client.guard import DEFAULT_SETTLE, QUICK_SETTLE


def configure_sync(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="the local directory to keep in sync")
    parser.add_argument("--server", metavar="URL", help="the hearth server, e.g. https://home.example.net "
                        "(remembered in DIR/.hearth after the first run)")
    parser.add_argument("--user", metavar="U", help="your hearth user name (remembered after the first run)")
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--password-stdin", action="store_true",
                        help="read the password (or an app password) from the first line of stdin")
    secret.add_argument("--token-file", metavar="F",
                        help="read an app password from file F (for running as a service)")
    parser.add_argument("--folder", metavar="NAME", help="the server folder: one of yours (created if "
                        "missing; default: DIR's name) or OWNER/NAME for one shared with you")
    parser.add_argument("--device", metavar="NAME", default=socket.gethostname(),
                        help="this device's name, used in conflict copies (default: the host name)")
    parser.add_argument("--once", action="store_true",
                        help="sync until both sides match, then exit: 0 if in sync, 1 if not")
    parser.add_argument("--confirm-deletes", action="store_true",
                        help="send deletions the mass-deletion guard held back (an emptied or mostly "
                             "deleted folder)")
    parser.add_argument("--delete-settle", type=float, default=DEFAULT_SETTLE, metavar="S",
                        help="seconds without a new deletion before more than 10 pending deletions are "
                             f"judged together and sent (default {DEFAULT_SETTLE:g}); a few wait "
                             f"{QUICK_SETTLE:g} s")
    parser.add_argument("--scan-interval", type=float, default=60.0, metavar="S",
                        help="seconds between full rescans, a safety net behind the watcher (default 60)")
    parser.add_argument("--debounce", type=int, default=100, metavar="MS",
                        help="milliseconds of quiet the watcher waits for before syncing (default 100)")
    parser.add_argument("--no-watch", action="store_true", help="no file watcher: periodic scans only")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every file transferred")


def configure_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a directory synced with `hearth sync DIR`")


def _credentials(parser: argparse.ArgumentParser) -> None:
    secret = parser.add_mutually_exclusive_group(required=True)
    secret.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first line")
    secret.add_argument("--token-file", metavar="F", help="read an app password from file F")


def configure_versions(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a directory synced with `hearth sync DIR`")
    parser.add_argument("path", metavar="PATH", help="a file in it (relative to DIR, or a path inside DIR)")
    _credentials(parser)


def configure_restore(parser: argparse.ArgumentParser) -> None:
    configure_versions(parser)
    parser.add_argument("--revision", type=int, metavar="ID",
                        help="the revision to bring back (default: the newest content before the current one, "
                             "or the last content of a deleted file)")
    parser.add_argument("--device", metavar="NAME", default=socket.gethostname(),
                        help="the device name recorded with the restore (default: the host name)")


def configure_trash(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", metavar="DIR", help="a directory synced with `hearth sync DIR`")
    _credentials(parser)
