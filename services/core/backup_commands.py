"""`hearth backup --to DIR`, `hearth backup status` and `hearth restore --from SOURCE`.

Kept light to import (services.cli imports it): the work is in services.core.backup.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

from .command_support import ProgressBars, as_command
from .exitcodes import ExitStatus


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the `backup`, `backup status` and `restore` commands to the hearth CLI."""
    backup = command(
        "backup", "services.core.backup_commands:run_backup",
        "Copy the whole server into a directory or a bucket (s3://BUCKET/PREFIX), while the daemons keep running: "
        "a consistent snapshot of the database (accounts, app passwords, files with versions and trash, calendars, "
        "contacts, shares, links), hearth.toml, and every chunk of file content, each one's BLAKE3 checked.",
        epilog="Run it again into the same place to bring the backup up to date: only chunks it lacks are\n"
               "copied, so a backup that was interrupted (even by kill -9) resumes where it stopped.\n"
               "backup.json is written last: until it is, the previous backup there stays whole, and a first\n"
               "backup without it is not a backup. Keep it on another disk, machine or object store.\n"
               "A bucket gets the same layout as a directory, with the chunks under PREFIX/chunks/; the\n"
               "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY variables give the credentials.\n\n"
               "related commands:\n"
               "  hearth backup status       how far behind the Litestream replica is, and the last backup\n"
               "  hearth restore --from DIR  bring a backup back on a new machine (or --from s3://BUCKET/PREFIX)\n\n"
               "examples:\n  hearth backup --to /mnt/usb/hearth-backup\n"
               "  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \\\n"
               "    hearth backup --to s3://backups/hearth --endpoint https://s3.example.org")
    backup.add_argument("--to", required=True, metavar="DIR|s3://BUCKET/PREFIX",
                        help="backup directory or bucket prefix: new, empty, or one an earlier hearth backup wrote")
    backup.add_argument("--verify", action="store_true",
                        help="also re-hash the chunks already in the backup and copy again any that rotted there "
                             "(slow: with a bucket, every chunk is downloaded)")
    _s3_flags(backup)
    command("backup status", "services.core.backup_commands:run_status",
            "Say how far behind the Litestream replica ([backup] replica) is, and when `hearth backup` last ran.",
            epilog="Exit codes: 0 the replica is up to date (within a few sync intervals), 1 it is behind or\n"
                   "unreadable, 4 replication is configured but hearth_litestream is not running.")
    command("backup replicate", "services.core.backup_commands:run_replicate",
            "Replicate the database continuously to [backup] replica with Litestream, in the foreground: what "
            "the hearth_litestream service runs (hearth up starts it when [backup] replica is set).",
            epilog="Writes data_dir/run/litestream.yml from hearth.toml, then becomes `litestream replicate`.\n"
                   "With a bucket replica (\"s3\" or s3://BUCKET/PREFIX) it first uploads hearth.toml and the\n"
                   "files it names (TLS key, secrets) to PREFIX/server/, so the bucket alone restores the server:\n"
                   "restart the service after changing them. Exit code 2 when [backup] replica is empty.")
    restore = command(
        "restore", "services.core.backup_commands:run_restore",
        "Restore a whole server from a `hearth backup` directory or bucket prefix, from the bucket it replicates "
        "to (s3://BUCKET/PREFIX), or from a Litestream replica with --blobs, into a new or empty data directory, on "
        "a fresh clone before `make up`; then run `make up`.",
        epilog="Refuses a data directory that holds anything (exit 1, nothing changed). Without a hearth.toml\n"
               "here, the backup's is restored first, and its data_dir is where the data goes. Every chunk\n"
               "copied is checked against its BLAKE3 name and the database against the SHA-256 in backup.json;\n"
               "from a bucket home, the chunks stay where they are and each is checked to be there.\n\n"
               "examples:\n"
               "  hearth restore --from /mnt/usb/hearth-backup\n"
               "  AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… \\\n"
               "    hearth restore --from s3://bucket/hearth --endpoint https://s3.example.org\n"
               "  hearth restore --from file:///mnt/nas/hearth-db --blobs /mnt/usb/hearth-backup")
    restore.add_argument("--from", dest="source", required=True, metavar="SOURCE",
                         help="a backup directory or s3://BUCKET/PREFIX (hearth backup --to), the bucket home "
                              "s3://BUCKET/PREFIX a server replicates to ([backup] replica), or a Litestream replica "
                              "URL (file://)")
    restore.add_argument("--blobs", metavar="DIR",
                         help="with a file:// replica: the backup directory holding the chunks (and hearth.toml); "
                              "with s3:// of a server that kept its chunks on local disk: the one holding them")
    _s3_flags(restore)


def _s3_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", metavar="URL",
                        help="with s3://: the S3 endpoint (default [storage] s3_endpoint)")
    parser.add_argument("--region", help="with s3://: the region requests are signed for (default [storage] s3_region)")


def run_backup(args: argparse.Namespace) -> int:
    return as_command(_backup, args)


def run_restore(args: argparse.Namespace) -> int:
    return as_command(_restore, args)


def run_status(args: argparse.Namespace) -> int:
    return as_command(_status, args)


def run_replicate(args: argparse.Namespace) -> int:
    return as_command(_replicate, args)


def _replicate(args: argparse.Namespace) -> int:
    import os

    from .backup.bucket import configured_home, upload_server_files
    from .backup.replica import config_path, litestream_bin, litestream_environ, write_config
    from .config import load_config
    from .errors import ConfigError

    config = load_config(args.config)
    if not config.backup.replica:
        raise ConfigError(f"{config.path}: [backup] replica is empty: nothing to replicate")
    write_config(config)
    home = configured_home(config)
    if home is not None:
        upload_server_files(config, home)
    binary = litestream_bin()
    os.execve(binary, [binary, "replicate", "-no-expand-env", "-config", str(config_path(config))],
              litestream_environ())


def _backup(args: argparse.Namespace) -> int:
    from .backup.create import backup_place, create_backup
    from .config import load_config

    config = load_config(args.config)
    place = backup_place(config, args.to, endpoint=args.endpoint, region=args.region)
    bars = ProgressBars("backup", unit="chunk")
    try:
        manifest = create_backup(config, place, verify=args.verify, progress=bars.start)
    finally:
        bars.close()
    copied, counts = manifest["copied"], manifest["counts"]
    print(f"backed up to {place.url}: {counts['users']} users, {counts['app_passwords']} app passwords, "
          f"{counts['folders']} folders, {counts['revisions']} file revisions, {manifest['chunks']} chunks "
          f"({copied['chunks']} copied, {copied['bytes']} bytes; {copied['already_there']} already there"
          + (f", {copied['repaired']} of them damaged and copied again" if copied["repaired"] else "") + ")")
    return ExitStatus.OK


def _restore(args: argparse.Namespace) -> int:
    from .backup.restore import restore

    bars = ProgressBars("restore", unit="chunk")
    try:
        report = restore(args.config, args.source, args.blobs, endpoint=args.endpoint, region=args.region,
                         progress=bars.start)
    finally:
        bars.close()
    if report.config_restored:
        print(f"restored {report.config}")
    for path in report.named_files:
        print(f"restored {path}")
    for path in report.kept_files:
        print(f"kept {path}: a file is already there (the backed-up one was not restored over it)")
    print(f"restored {report.users} users and {report.chunks} chunks ({report.copied_bytes} bytes) into "
          f"{report.data_dir}; start the server with `make up`")
    if report.replica:  # Litestream makes the restored database the replica's newest state at `make up`
        print(f"note: hearth.toml replicates the database to {report.replica}; if that replica holds a newer "
              f"database than this backup, restore from it instead (hearth restore --from {report.replica} "
              f"--blobs {args.source}) before `make up`, which replicates this restored state there")
    return ExitStatus.OK


def _status(args: argparse.Namespace) -> int:
    from .backup.create import last_backup
    from .config import load_config

    config = load_config(args.config)
    last = last_backup(config)
    if last:
        print(f"last backup: {last['dir']} at {last['created_at']} ({_ago(last['finished_at'])}), "
              f"{last['chunks']} chunks")
    else:
        print("last backup: none from this server (hearth backup --to DIR)")
    if not config.backup.replica:
        print("replication: off ([backup] replica is empty)")
        return ExitStatus.OK
    return _replication_status(config)


def _replication_status(config) -> int:
    from services.rc.layout import Paths
    from services.rc.pidfile import pidfile_status

    from .backup.replica import SERVICE, replica_state

    running = pidfile_status(Paths(config.data_dir, SERVICE).pidfile).running
    state = replica_state(config)
    if state.replica_txid is None:
        print(f"replica {state.url}: empty, nothing replicated yet")
    else:
        print(f"replica {state.url}: transaction {state.replica_txid}, written {_ago(state.replica_at)}")
    if state.last_write is not None:
        print(f"database: last written {_ago(state.last_write)}"
              + (f", transaction {state.local_txid} read by litestream" if state.local_txid else ""))
    behind = state.behind_seconds
    if behind is None:
        print("behind: everything (the replica is empty)")
    elif behind == 0:
        print("up to date: the replica has every change")
    else:
        print(f"behind: at most the last {behind:.0f} s of changes are not on the replica yet")
    if not running:
        print(f"hearth_{SERVICE} is not running: changes are not being replicated "
              f"(`hearth service {SERVICE} start`)")
        return ExitStatus.NOT_RUNNING
    if behind is None or behind > max(5.0, 5 * config.backup.sync_interval):
        return ExitStatus.ERROR
    return ExitStatus.OK


def _ago(when: float | None) -> str:
    if when is None:
        return "never"
    return f"{max(0, time.time() - when):.0f} s ago"


