"""Fixtures shared by the tests that work on hearth's database directly."""
from __future__ import annotations

import pytest

from services.core.db import migrate, open_db
from services.core.schema import MIGRATION_SETS


@pytest.fixture
def db(tmp_path):
    """A fresh hearth database (every migration applied) in tmp_path, closed afterwards."""
    path = tmp_path / "db" / "hearth.sqlite3"
    migrate(path, MIGRATION_SETS)
    connection = open_db(path)
    yield connection
    connection.close()
