"""The store every daemon opens follows a migration recorded in the database (services/core/blob_migration.py).

Two real local stores and a real database file: while the row says "copying", new chunks go to the
target and reads fall back to the source; garbage collection deletes nothing from either; a write that
straddles the start of a migration still reaches the target.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from services.core.blob_migration import MigratingStore
from services.core.db import db_path, migrate, open_db, write
from services.core.errors import ConfigError, StoreUnavailable
from services.core.schema import MIGRATION_SETS
from services.core.tree import collect_garbage
from services.core.tree.chunks import ChunkStore, chunk_id

SOURCE, TARGET = {"blobs": "local"}, {"blobs": "local-elsewhere"}


@pytest.fixture
def stores(tmp_path):
    migrate(db_path(tmp_path), MIGRATION_SETS)
    source, target = ChunkStore(tmp_path / "blobs"), ChunkStore(tmp_path / "elsewhere")
    made = {json.dumps(TARGET): target}
    store = MigratingStore(source, SOURCE, tmp_path, lambda settings: made[json.dumps(settings)])
    db = open_db(db_path(tmp_path))
    yield db, store, source, target
    db.close()


def record(db, state: str) -> None:
    write(db, lambda d: d.execute(
        "INSERT OR REPLACE INTO blob_migration (id, source, target, state, started_at, updated_at) "
        "VALUES (1, ?, ?, ?, 0, 0)", [json.dumps(SOURCE), json.dumps(TARGET), state]))


def chunk(n: int) -> tuple[str, bytes]:
    data = f"chunk {n}".encode() * 10
    return chunk_id(data), data


def test_without_a_migration_the_configured_store_is_used_alone(stores):
    db, store, source, target = stores
    cid, data = chunk(1)
    store.put(cid, data)
    assert source.has_many([cid]) == {cid} and target.has_many([cid]) == set()


def test_while_copying_new_chunks_go_to_the_target_and_reads_fall_back_to_the_source(stores):
    db, store, source, target = stores
    old, old_data = chunk(1)
    source.put(old, old_data)
    record(db, "copying")
    new, new_data = chunk(2)
    store.put(new, new_data)
    staged_id, staged_data = chunk(3)
    store.publish([store.stage(staged_id, staged_data)])
    assert target.has_many([old, new, staged_id]) == {new, staged_id} and source.has_many([new]) == set()
    assert store.get(old) == old_data and store.get(new) == new_data
    assert store.has_many([old, new, staged_id]) == {old, new, staged_id}
    assert set(store.stored()) == {old, new, staged_id}
    record(db, "done")  # a daemon still configured for the source keeps both until it restarts
    assert store.get(old) == old_data and "migrated" in store.describe()


def test_garbage_collection_deletes_nothing_from_either_store_while_chunks_move(stores):
    db, store, source, target = stores
    ids = []
    for n, where in enumerate((source, target)):
        cid, data = chunk(n)
        where.put(cid, data)
        os.utime(where.path(cid), (time.time() - 7200,) * 2)  # unreferenced, lease long run out
        ids.append(cid)
    record(db, "copying")
    assert write(db, lambda d: collect_garbage(d, store, 60)) == []
    assert source.has_many(ids) | target.has_many(ids) == set(ids)
    record(db, "done")
    assert write(db, lambda d: collect_garbage(d, store, 60)) == [ids[1]]  # the new store's, as usual


def test_a_write_that_straddles_the_start_of_a_migration_reaches_the_target(stores, tmp_path):
    db, store, source, target = stores

    class SlowSource(ChunkStore):
        """The copier records the migration (and lists the source) while this put is under way."""

        def put(self, id, data):
            record(db, "copying")
            super().put(id, data)

    straddling = MigratingStore(SlowSource(tmp_path / "blobs"), SOURCE, tmp_path,
                                lambda settings: target)
    cid, data = chunk(7)
    straddling.put(cid, data)
    assert target.get(cid) == data


def test_a_daemon_that_cannot_reach_the_target_answers_503_rather_than_miss_chunks(stores, tmp_path):
    db, _, source, target = stores

    def no_credentials(settings):
        raise ConfigError('blobs = "s3" needs AWS_ACCESS_KEY_ID in the environment')

    store = MigratingStore(source, SOURCE, tmp_path, no_credentials)
    cid, data = chunk(1)
    store.put(cid, data)  # no migration yet: the configured store
    record(db, "copying")
    for use in (lambda: store.put(*chunk(2)), lambda: store.get(cid)):
        with pytest.raises(StoreUnavailable, match="storage migration to local-elsewhere: blobs = \"s3\" needs"):
            use()


def test_the_row_is_read_again_only_after_another_process_committed(stores, tmp_path):
    db, store, source, target = stores
    cid, data = chunk(1)
    store.put(cid, data)  # no migration: the configured store
    read: list[str] = []
    store._db.set_trace_callback(read.append)  # the statements the store runs on its own connection
    for _ in range(20):
        assert store.get(cid) == data
    assert not [sql for sql in read if "blob_migration" in sql]  # nothing committed since: no query
    copier = (f"import sqlite3, json; db = sqlite3.connect({str(db_path(tmp_path))!r}); "
              f"db.execute('INSERT INTO blob_migration (id, source, target, state, started_at, updated_at) "
              f"VALUES (1, ?, ?, \\'copying\\', 0, 0)', [json.dumps({SOURCE!r}), json.dumps({TARGET!r})]); "
              "db.commit()")
    subprocess.run([sys.executable, "-c", copier], check=True, timeout=60)  # `hearth storage migrate`
    new, new_data = chunk(2)
    store.put(new, new_data)
    assert target.has_many([new]) == {new} and source.has_many([new]) == set()
    assert [sql for sql in read if "blob_migration" in sql]
