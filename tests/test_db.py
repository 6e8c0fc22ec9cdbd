"""SQLite as hearth uses it: WAL, named migrations, one writer, never "database is locked"."""
import asyncio
import logging
import subprocess
import sys
import textwrap

import pytest
from sqlite_utils.migrations import Migrations

from services.core.db import Database, migrate, open_db, write
from services.core.log import OneLineFormatter
from services.core.schema import MIGRATION_SETS


def test_migrations_are_named_recorded_and_applied_once(tmp_path):
    path = tmp_path / "db" / "hearth.sqlite3"
    migrate(path, MIGRATION_SETS)
    migrate(path, MIGRATION_SETS)
    db = open_db(path)
    applied = [(row["migration_set"], row["name"]) for row in db["_sqlite_migrations"].rows]
    assert applied == [("core", "m001_accounts"), ("core", "m002_auth_failures"), ("core", "m003_user_addresses"),
                       ("files", "m001_tree"), ("files", "m002_deletable_folders"), ("files", "m003_chunk_uploads"),
                       ("files", "m004_tree_stamps"), ("files", "m005_entries_by_file_id"),
                       ("files", "m006_deletion_runs"),
                       ("files", "m007_every_user_has_a_root_id"), ("files", "m008_blob_migration"),
                       ("files", "m009_chunk_deletions"),
                       ("dav", "m001_collections"),
                       ("dav", "m002_item_revisions"), ("dav", "m003_event_instances"),
                       ("dav_scheduling", "m001_scheduling"),
                       ("dav_scheduling", "m002_schedule_tags"), ("dav_sharing", "m001_personal_properties"),
                       ("sessions", "m001_sessions"),
                       ("links", "m001_share_links"), ("links", "m002_hashed_tokens"), ("files_webdav", "m001_properties_and_locks"),
                       ("files_webdav", "m002_entries_by_parent"), ("files_webdav", "m003_revision_checksums"),
                       ("login_flows", "m001_login_flows")]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_a_failing_migration_changes_nothing_and_stays_pending(tmp_path):
    path = tmp_path / "x.sqlite3"
    broken = Migrations("broken")

    @broken()
    def m001_half_done(db):
        db.execute("CREATE TABLE half (id INTEGER)")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        migrate(path, [broken])
    db = open_db(path)
    assert "half" not in db.table_names()
    assert [m.name for m in broken.pending(db)] == ["m001_half_done"]


def test_processes_migrating_at_once_apply_each_migration_once(tmp_path):
    path = tmp_path / "db" / "hearth.sqlite3"
    code = textwrap.dedent(f"""
        from pathlib import Path
        from services.core.db import migrate
        from services.core.schema import MIGRATION_SETS
        migrate(Path({str(path)!r}), MIGRATION_SETS)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    every_migration = sum(len(m.pending(open_db(tmp_path / "fresh.sqlite3"))) for m in MIGRATION_SETS)
    assert open_db(path)["_sqlite_migrations"].count == every_migration


def test_one_writer_with_concurrent_writes_and_another_process(tmp_path):
    path = tmp_path / "w.sqlite3"
    db = open_db(path)
    db.execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)")
    db.execute("INSERT INTO counter VALUES (1, 0)")
    db.execute("CREATE TABLE other (id INTEGER PRIMARY KEY)")
    db.close()
    # A second process hammers the same file with its own short write transactions.
    other = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        from pathlib import Path
        from services.core.db import open_db, write
        db = open_db(Path({str(path)!r}))
        for i in range(300):
            write(db, lambda conn: conn.execute("INSERT INTO other DEFAULT VALUES"))
    """)])

    def increment(conn):
        (n,) = conn.execute("SELECT n FROM counter WHERE id = 1").fetchone()
        conn.execute("UPDATE counter SET n = ? WHERE id = 1", [n + 1])
        return n + 1

    async def main():
        database = Database(path)
        try:
            results = await asyncio.gather(*(database.write(increment) for _ in range(300)))
            reads = await asyncio.gather(*(database.read(
                lambda conn: conn.execute("SELECT n FROM counter").fetchone()[0]) for _ in range(20)))
            return results, reads
        finally:
            database.close()

    results, reads = asyncio.run(main())
    assert other.wait(timeout=60) == 0
    # Read-modify-write without lost updates: the writer really is one path.
    assert sorted(results) == list(range(1, 301))
    assert set(reads) == {300}
    assert open_db(path)["other"].count == 300


def test_a_failed_write_rolls_back(tmp_path):
    path = tmp_path / "r.sqlite3"
    db = open_db(path)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")

    def insert_then_fail(conn):
        conn.execute("INSERT INTO t DEFAULT VALUES")
        raise ValueError("bad input")

    with pytest.raises(ValueError):
        write(db, insert_then_fail)
    assert db["t"].count == 0
    assert not db.conn.in_transaction


def test_log_records_are_one_line_even_with_a_traceback():
    formatter = OneLineFormatter()
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        record = logging.LogRecord("api", logging.ERROR, __file__, 1, "failed %s", ("x",), sys.exc_info())
    line = formatter.format(record)
    assert "\n" not in line
    assert " ERROR api: failed x | Traceback" in line and "RuntimeError: boom" in line
