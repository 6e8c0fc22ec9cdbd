"""Fixtures shared across test files: a migrated database, a running DAV daemon."""
from __future__ import annotations

import os

import pytest

from services.core.db import migrate, open_db
from services.core.schema import MIGRATION_SETS
from tests.dav_harness import dav_daemon


@pytest.fixture
def db(tmp_path):
    """A fresh hearth database (every migration applied) in tmp_path, closed afterwards."""
    path = tmp_path / "db" / "hearth.sqlite3"
    migrate(path, MIGRATION_SETS)
    connection = open_db(path)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def dav(tmp_path_factory):
    """The DAV daemon on a loopback port with alice, bob and carol, one per test module."""
    yield from dav_daemon(tmp_path_factory)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory):
    """One real SeaweedFS S3 gateway for the session; tests take a bucket each (`seaweed.create_bucket()`)."""
    from tests import seaweed as module

    if module.SESSION is not None:  # HEARTH_TEST_BLOBS=s3 started it already
        yield module.SESSION
        return
    server = module.SeaweedS3(tmp_path_factory.mktemp("seaweed")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session", autouse=True)
def blobs_backend(tmp_path_factory):
    """HEARTH_TEST_BLOBS=s3: every test daemon and installation keeps its chunks in one real SeaweedFS."""
    backend = os.environ.get("HEARTH_TEST_BLOBS", "local")
    assert backend in ("local", "s3"), f"HEARTH_TEST_BLOBS: expected local or s3, got {backend!r}"
    if backend == "local":
        yield
        return
    from tests import seaweed as module

    module.SESSION = module.SeaweedS3(tmp_path_factory.mktemp("seaweed-session")).start()
    yield
    module.SESSION.stop()
    module.SESSION = None
