"""`hearth storage migrate --to s3|local`: move every chunk to the other store while the daemons keep serving.

The protocol (a row in the database that every daemon's store follows, new chunks to the target, the
garbage collector paused, the config switched last) is described in services.core.blob_migration.
Kept light to import (services.cli imports it).
"""
from __future__ import annotations

import argparse
import fcntl
import os
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from .command_support import ProgressBars, as_command
from .exitcodes import ExitStatus

PROGRESS_EVERY = 50  # chunks between two progress rows: what `hearth status` and a watcher read


def register(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add `storage` (its help lists the others), `storage migrate` and `storage remove-old` to the hearth CLI."""
    command("storage", "services.core.storage_commands:run_storage",
            "Where file chunks live ([storage] blobs, local disk or S3), and moving them: see the commands below.",
            epilog="commands:\n"
                   "  hearth storage migrate --to s3|local  move every chunk to the other store, daemons serving\n"
                   "  hearth storage remove-old             afterwards, delete the chunks from the old store\n\n"
                   "`hearth status` says where the chunks are and how far a migration got.")
    migrate = command(
        "storage migrate", "services.core.storage_commands:run_migrate",
        "Move every file chunk to another store ([storage] blobs = \"s3\" or \"local\") while the daemons keep "
        "serving: each chunk's BLAKE3 is checked, and hearth.toml is switched only when every chunk is there.",
        epilog="While it runs, the daemons write new chunks to the target and read from the target, then the\n"
               "old store; garbage collection waits. Killed (even by kill -9), run the same command again: it\n"
               "resumes (`--to s3` alone takes the settings it began with), copying only what the target lacks.\n"
               "A second run while one is going is refused (exit 3).\n"
               "The target's settings are hearth.toml's [storage] s3_* keys unless given as flags; S3 credentials\n"
               "come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, which the daemons need too (in the environment\n"
               "of `hearth up`) before you start. The old store's chunks are kept: `hearth storage remove-old`\n"
               "removes them.\n\n"
               "examples:\n"
               "  hearth storage migrate --to s3 --s3-endpoint https://s3.example.net --s3-bucket hearth\n"
               "  hearth storage migrate --to local")
    migrate.add_argument("--to", required=True, choices=("s3", "local"), help="the store to move the chunks to")
    for key, text in (("endpoint", "the S3 endpoint URL"), ("bucket", "the bucket (it must exist)"),
                      ("region", "the region requests are signed for"), ("prefix", "key prefix in the bucket")):
        migrate.add_argument(f"--s3-{key}", help=f"with --to s3: {text} (default: [storage] s3_{key})")
    command("storage remove-old", "services.core.storage_commands:run_remove_old",
            "After `hearth storage migrate` finished: delete the chunks from the store they were moved out of, each "
            "one only once the new store holds it with the right BLAKE3 (read back from there).",
            epilog="A chunk the new store lacks or holds damaged is first copied there again from the old one. Killed\n"
                   "(even by kill -9), run it again: it goes on with the chunks still there. Refused, with nothing\n"
                   "deleted, when no migration finished, while one copies (or runs), and before hearth.toml was\n"
                   "switched. Daemons that have not restarted since the migration read the new store first, so\n"
                   "they lose nothing either. Exit 1 when a chunk damaged in the old store had to be kept.\n\n"
                   "example:\n  hearth storage migrate --to s3 && hearth storage remove-old")


def run_storage(args: argparse.Namespace) -> int:
    """`hearth storage` alone: which commands there are (exit 2, as for any incomplete command line)."""
    import sys

    print("hearth storage: name a command: migrate, remove-old (hearth storage --help)", file=sys.stderr)
    return ExitStatus.CONFIG


def run_migrate(args: argparse.Namespace) -> int:
    return as_command(_migrate, args)


def run_remove_old(args: argparse.Namespace) -> int:
    return as_command(_remove_old, args)


def target_settings(args: argparse.Namespace, config) -> dict[str, str]:
    if args.to == "local":
        return {"blobs": "local"}
    from .blobs import S3_KEYS

    storage = config.values["storage"]
    flags = {key: getattr(args, key) for key in S3_KEYS}
    return {"blobs": "s3", **{key: storage[key] if flags[key] is None else flags[key] for key in S3_KEYS}}


@contextmanager
def migration_lock(config) -> Iterator[None]:
    """One migration at a time: an exclusive lock on data_dir/run/storage-migrate.lock (the kernel lets go of
    it when the holder dies, even by kill -9). Another holder: CommandError, exit 3."""
    from .errors import CommandError
    from .private import create_private_file, private_dir

    path = private_dir(config.data_path("run")) / "storage-migrate.lock"
    create_private_file(path)
    with open(path, "r+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = lock.read().strip() or "?"
            raise CommandError(f"a storage migration is already running (pid {holder}); wait for it, or stop it "
                               "and run the command again to resume", ExitStatus.ALREADY_RUNNING) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


def _migrate(args: argparse.Namespace) -> int:
    from .blob_migration import key_of, read_migration
    from .blobs import S3_KEYS, store_settings
    from .command_support import database
    from .config import load_config
    from .errors import CommandError

    config = load_config(args.config)
    if config.path is None:
        raise CommandError("no hearth.toml to switch: run the command where it is, or give --config",
                           ExitStatus.CONFIG)
    configured, target = store_settings(config), target_settings(args, config)
    with database(args) as db, migration_lock(config):
        migration = read_migration(db)
        if migration is not None and migration.state == "copying" and migration.target["blobs"] == args.to and \
                not any(getattr(args, key, None) for key in S3_KEYS):
            target = migration.target  # `--to s3` alone resumes with the settings the migration began with
        if migration is not None and migration.state == "copying" and key_of(migration.target) != key_of(target):
            raise CommandError(f"a migration to {describe(migration.target)} is unfinished: run `hearth storage "
                               f"migrate --to {migration.target['blobs']}` with the same settings to finish it first")
        if migration is not None and key_of(migration.target) == key_of(target) and (
                migration.state == "copying" or key_of(migration.source) == key_of(configured)):
            source = migration.source  # resume a copy, or a switch killed before hearth.toml was written
        elif key_of(configured) == key_of(target):
            raise CommandError(f"the chunks are already in {describe(target)} ([storage] in {config.path})")
        else:
            source, migration = configured, None
        stores = _open(config, source, target)
        try:
            if migration is None or migration.state == "copying":
                _copy(db, *stores, source, target, resumed=migration is not None)
        finally:
            for store in stores:
                store.close()
        _switch(config, target)
    print(f"hearth.toml now says blobs = {target['blobs']!r}; daemons that started before read the old store "
          f"only for what the new one lacks until they restart (`hearth down && hearth up`).")
    print(f"The old store's chunks were kept ({describe(source)}): `hearth storage remove-old` removes them, each "
          "one once it is checked in the new store.")
    return 0


def _remove_old(args: argparse.Namespace) -> int:
    from .blob_migration import key_of, read_migration
    from .blob_removal import remove_old_chunks
    from .blobs import store_settings
    from .command_support import database
    from .config import load_config
    from .errors import CommandError

    config = load_config(args.config)
    with database(args) as db, migration_lock(config):
        migration = read_migration(db)
        if migration is None:
            raise CommandError("no storage migration was made here: there is no old store to remove")
        if migration.state != "done":
            raise CommandError(f"the migration to {describe(migration.target)} is not finished: run `hearth storage "
                               f"migrate --to {migration.target['blobs']}` first (nothing was deleted)")
        if key_of(store_settings(config)) != key_of(migration.target):
            raise CommandError(f"hearth.toml's [storage] does not name {describe(migration.target)}, where the "
                               f"chunks were moved: run `hearth storage migrate --to {migration.target['blobs']}` "
                               "to switch it (nothing was deleted)")
        old, new = _open(config, migration.source, migration.target, "remove the old chunks")
        bars = ProgressBars("removing", unit="chunk")
        try:
            report = remove_old_chunks(old, new, progress=bars.start)
        finally:
            bars.close()
            old.close()
            new.close()
    print(f"removed {report.removed} chunks ({report.removed_bytes / 2**20:.1f} MiB) from {describe(migration.source)}; "
          f"each is in {describe(migration.target)}, BLAKE3 checked"
          + (f" ({report.copied_again} were missing there or damaged, and copied again first)"
             if report.copied_again else ""))
    if report.damaged:
        raise CommandError(f"{len(report.damaged)} chunks are damaged in {describe(migration.source)} and not whole "
                           f"in {describe(migration.target)}, so they were kept (the first: {report.damaged[0]}); "
                           "`hearth sync check --verify` lists their files")
    return 0


def describe(settings) -> str:
    if settings["blobs"] == "local":
        return "local blobs"
    return f"s3://{settings['s3_bucket']}/{settings['s3_prefix']} at {settings['s3_endpoint']}"


def _open(config, source, target, doing: str = "migrate"):
    """(source store, target store), both checked: a store that cannot be reached is one line, and nothing
    has been changed yet."""
    from .blobs import build_store, store_problem
    from .errors import CommandError

    opened = []
    try:
        for role, settings in (("source", source), ("target", target)):
            store = build_store(settings, config)
            opened.append(store)
            if problem := store_problem(store):
                raise CommandError(f"cannot {doing}: the {role} store cannot be used: {problem}; nothing was changed")
    except BaseException:
        for store in opened:
            store.close()
        raise
    return tuple(opened)


def _copy(db, source_store, target_store, source, target, *, resumed: bool) -> None:
    """Record the migration (from now on the daemons write to the target), copy what the target lacks,
    check every chunk the journal knows is there."""
    from .backup.blob_copy import copy_chunks
    from .blob_migration import key_of
    from .db import write

    now = time.time()
    write(db, lambda db: db.execute(
        """INSERT INTO blob_migration (id, source, target, state, started_at, updated_at) VALUES (1, ?, ?, 'copying', ?, ?)
           ON CONFLICT (id) DO UPDATE SET source = excluded.source, target = excluded.target, state = 'copying',
               updated_at = excluded.updated_at, chunks_done = 0,
               runs = CASE WHEN blob_migration.state = 'copying' THEN runs + 1 ELSE 1 END,
               started_at = CASE WHEN blob_migration.state = 'copying' THEN started_at ELSE excluded.started_at END""",
        [key_of(source), key_of(target), now, now]))
    ids = list(source_store.stored())  # listed after the row committed: see blob_migration
    write(db, lambda db: db.execute("UPDATE blob_migration SET chunks_total = ? WHERE id = 1", [len(ids)]))
    print(f"{'resuming' if resumed else 'migrating'}: {len(ids)} chunks from {describe(source)} to {describe(target)}",
          flush=True)
    bars = ProgressBars("chunks", unit="chunk")
    report = copy_chunks(source_store, target_store, ids, source_name=describe(source),
                         progress=_progress(db, bars.start(len(ids))))
    bars.close()
    referenced = _referenced(db)
    lacking = referenced - target_store.has_many(referenced)
    if lacking:  # chunks the journal names that neither listing held: say so rather than switch
        report_missing = copy_chunks(source_store, target_store, lacking, source_name=describe(source),
                                     allow_missing=True)
        if report_missing.missing:
            print(f"warning: {len(report_missing.missing)} chunks the journal references are in neither store "
                  "(they were missing before the migration; `hearth sync check` lists their files)")
    write(db, lambda db: db.execute("UPDATE blob_migration SET state = 'done', chunks_done = chunks_total, "
                                    "updated_at = ? WHERE id = 1", [time.time()]))
    print(f"copied {report.copied} chunks ({report.copied_bytes / 2**20:.1f} MiB), {report.present} were already "
          f"there; every chunk is in {describe(target)}, BLAKE3 checked", flush=True)


def _progress(db, bar: Callable[[int], None]) -> Callable[[int], None]:
    """Advances the bar, and every PROGRESS_EVERY chunks records the count in the migration row."""
    from .db import write

    done = 0

    def step(n: int) -> None:
        nonlocal done
        bar(n)
        done += n
        if done % PROGRESS_EVERY == 0:
            write(db, lambda db: db.execute("UPDATE blob_migration SET chunks_done = ?, updated_at = ? WHERE id = 1",
                                            [done, time.time()]))
    return step


def _referenced(db) -> set[str]:
    return {row[0] for row in db.execute(
        "SELECT chunk_id FROM revision_chunks UNION SELECT chunk_id FROM chunk_uploads")}


def _switch(config, target) -> None:
    """hearth.toml's [storage] names the target from now on (the row already says "done")."""
    from .config_edit import set_keys

    set_keys(config.path, "storage", target)
    if os.environ.get("HEARTH_STORAGE_BLOBS") not in (None, target["blobs"]):
        print(f"warning: HEARTH_STORAGE_BLOBS={os.environ['HEARTH_STORAGE_BLOBS']} in the environment overrides "
              f"hearth.toml: set it to {target['blobs']}")
