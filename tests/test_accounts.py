"""Accounts: the rules on a real SQLite file, and `hearth user|token` in a subprocess."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from services.core import accounts
from services.core.db import db_path, open_db, write
from services.core.errors import BadRequest, Conflict, NotFound

PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def password_hash():
    return accounts.hash_password(PASSWORD)


def add_user(db, name, password_hash, admin=False):
    return write(db, lambda db: accounts.create_user(db, name, password_hash, admin=admin))


# --- names and passwords --------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("alice", "alice"), ("Alice", "alice"), ("a", "a"), ("bob.smith", "bob.smith"),
    ("x_1-2", "x_1-2"), ("0day", "0day"), ("a" * 64, "a" * 64),
])
def test_valid_names_are_case_folded(name, expected):
    assert accounts.normalize_name(name) == expected


@pytest.mark.parametrize("name", ["", ".hidden", "-x", "_x", "a b", "a/b", "..", "ümlaut", "a" * 65, "x\n",
                                  "K\u212a"])
def test_invalid_names_say_the_rule(name):
    with pytest.raises(BadRequest) as error:
        accounts.normalize_name(name)
    assert "lowercase letters" in error.value.reason


def test_create_and_get_user(db, password_hash):
    user = add_user(db, "Alice", password_hash, admin=True)
    assert user["name"] == "alice" and user["is_admin"] is True
    assert user["created_at"].endswith("Z")
    assert accounts.get_user(db, "ALICE")["password_hash"] == password_hash
    assert accounts.get_user(db, "nobody") is None
    assert accounts.get_user(db, "not a name") is None


def test_invalid_name_is_not_stored(db, password_hash):
    with pytest.raises(BadRequest):
        add_user(db, "bad/name", password_hash)
    assert accounts.list_users(db) == []


def test_duplicate_user_conflicts_whatever_the_case(db, password_hash):
    add_user(db, "alice", password_hash)
    with pytest.raises(Conflict, match="already exists"):
        add_user(db, "ALICE", password_hash)
    assert len(accounts.list_users(db)) == 1


@pytest.mark.parametrize("password", ["", "1234567", "x" * 1025])
def test_password_length_rules(password):
    with pytest.raises(BadRequest, match="password is too"):
        accounts.hash_password(password)


def test_hash_and_verify():
    stored = accounts.hash_password("12345678")
    assert stored.startswith("$argon2id$")
    assert stored != accounts.hash_password("12345678")  # salted
    assert accounts.verify_password(stored, "12345678")
    assert not accounts.verify_password(stored, "12345679")
    assert not accounts.verify_password("not a hash", "12345678")
    assert not accounts.needs_rehash(stored)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("12345678")
    assert accounts.verify_password(weak, "12345678")
    assert accounts.needs_rehash(weak)


def test_list_users_counts_active_app_passwords(db, password_hash):
    add_user(db, "bob", password_hash)
    add_user(db, "alice", password_hash, admin=True)
    first, _ = write(db, lambda db: accounts.create_app_password(db, "bob", "phone"))
    write(db, lambda db: accounts.create_app_password(db, "bob", "laptop"))
    write(db, lambda db: accounts.revoke_app_password(db, "bob", first["id"]))
    users = accounts.list_users(db)
    assert [(u["name"], u["is_admin"], u["app_passwords"]) for u in users] == [("alice", True, 0), ("bob", False, 1)]
    assert all("password_hash" not in u for u in users)


def test_set_password(db, password_hash):
    add_user(db, "alice", password_hash)
    new_hash = accounts.hash_password("another password")
    write(db, lambda db: accounts.set_password(db, "alice", new_hash))
    assert accounts.verify_password(accounts.get_user(db, "alice")["password_hash"], "another password")
    with pytest.raises(NotFound):
        write(db, lambda db: accounts.set_password(db, "nobody", new_hash))


# --- app passwords ----------------------------------------------------------------

def test_app_password_create_find_list_revoke(db, password_hash):
    add_user(db, "alice", password_hash)
    add_user(db, "bob", password_hash)
    row, secret = write(db, lambda db: accounts.create_app_password(db, "alice", "  phone "))
    assert secret.startswith("hearth-") and len(secret) >= 39
    assert row["label"] == "phone" and row["user"] == "alice" and row["last_used_at"] is None

    stored = db.execute("SELECT token_hash FROM app_passwords").fetchall()
    assert stored == [(hashlib.sha256(secret.encode()).hexdigest(),)]  # only the hash is kept

    found = accounts.find_app_password(db, secret)
    assert found["id"] == row["id"] and found["user"] == "alice" and found["is_admin"] is False
    assert accounts.find_app_password(db, secret + "x") is None
    assert [r["label"] for r in accounts.list_app_passwords(db, "alice")] == ["phone"]
    assert accounts.list_app_passwords(db, "bob") == []

    with pytest.raises(NotFound):  # not bob's to revoke
        write(db, lambda db: accounts.revoke_app_password(db, "bob", row["id"]))
    write(db, lambda db: accounts.revoke_app_password(db, "alice", row["id"]))
    assert accounts.find_app_password(db, secret) is None
    assert accounts.list_app_passwords(db, "alice") == []
    with pytest.raises(NotFound, match="no active app password"):
        write(db, lambda db: accounts.revoke_app_password(db, "alice", row["id"]))


def test_app_passwords_are_unique(db, password_hash):
    add_user(db, "alice", password_hash)
    secrets = {write(db, lambda db: accounts.create_app_password(db, "alice", "x"))[1] for _ in range(20)}
    assert len(secrets) == 20


@pytest.mark.parametrize("label", ["", "   ", "x" * 101, "tab\there"])
def test_app_password_label_rules(db, password_hash, label):
    add_user(db, "alice", password_hash)
    with pytest.raises(BadRequest, match="label"):
        write(db, lambda db: accounts.create_app_password(db, "alice", label))


def test_app_password_for_missing_user(db):
    with pytest.raises(NotFound):
        write(db, lambda db: accounts.create_app_password(db, "nobody", "phone"))
    with pytest.raises(NotFound):
        accounts.list_app_passwords(db, "nobody")


def test_touch_is_throttled_to_once_a_minute(db, password_hash):
    add_user(db, "alice", password_hash)
    row, secret = write(db, lambda db: accounts.create_app_password(db, "alice", "phone"))
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

    def touch(at):
        return write(db, lambda db: accounts.touch_app_password(db, row["id"], now=at))

    assert touch(start) is True
    assert accounts.find_app_password(db, secret)["last_used_at"] == "2026-01-02T03:04:05Z"
    assert touch(start + timedelta(seconds=30)) is False
    assert touch(start + timedelta(seconds=59)) is False
    assert accounts.find_app_password(db, secret)["last_used_at"] == "2026-01-02T03:04:05Z"
    assert touch(start + timedelta(seconds=61)) is True
    assert accounts.find_app_password(db, secret)["last_used_at"] == "2026-01-02T03:05:06Z"


# --- deletion and transactions ------------------------------------------------------

def test_delete_user_cascades(db, password_hash):
    add_user(db, "alice", password_hash)
    add_user(db, "bob", password_hash)
    _, alice_secret = write(db, lambda db: accounts.create_app_password(db, "alice", "phone"))
    write(db, lambda db: accounts.create_app_password(db, "alice", "laptop"))
    _, bob_secret = write(db, lambda db: accounts.create_app_password(db, "bob", "phone"))

    write(db, lambda db: accounts.delete_user(db, "Alice"))
    assert accounts.get_user(db, "alice") is None
    assert accounts.find_app_password(db, alice_secret) is None
    assert db.execute("SELECT count(*) FROM app_passwords").fetchone()[0] == 1
    assert accounts.find_app_password(db, bob_secret)["user"] == "bob"
    with pytest.raises(NotFound):
        write(db, lambda db: accounts.delete_user(db, "alice"))


def test_delete_user_runs_registered_data_deleters(db, password_hash, tmp_path, monkeypatch):
    module = tmp_path / "hearth_test_deleter.py"
    module.write_text("deleted = []\ndef delete(db, user):\n    deleted.append(user['name'])\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(accounts, "USER_DATA_DELETERS", ("hearth_test_deleter:delete",))
    add_user(db, "alice", password_hash)
    write(db, lambda db: accounts.delete_user(db, "alice"))
    import hearth_test_deleter
    assert hearth_test_deleter.deleted == ["alice"]


def test_functions_compose_in_the_callers_transaction(db, password_hash):
    def create_then_fail(db):
        accounts.create_user(db, "alice", password_hash)
        accounts.create_app_password(db, "alice", "phone")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write(db, create_then_fail)
    assert accounts.get_user(db, "alice") is None
    assert db.execute("SELECT count(*) FROM app_passwords").fetchone()[0] == 0


# --- the CLI, in a subprocess ---------------------------------------------------------

@pytest.fixture
def home(tmp_path):
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    return tmp_path


def hearth(home: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    return subprocess.run([sys.executable, "-m", "services.cli", "--config", str(home / "hearth.toml"), *args],
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, text=True, cwd=home, env=env, timeout=60)


def open_home_db(home: Path):
    return open_db(db_path(home / "var"))


def test_cli_user_add_list_passwd_del(home):
    result = hearth(home, "user", "add", "Alice", "--admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert "alice" in result.stdout
    assert hearth(home, "user", "add", "bob", "--password-stdin", stdin="bob's password\nignored\n").returncode == 0

    listing = hearth(home, "user", "list")
    assert listing.returncode == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["NAME", "ADMIN", "CREATED", "APP", "PASSWORDS"]
    assert [line.split()[:2] for line in lines[1:]] == [["alice", "yes"], ["bob", "no"]]

    db = open_home_db(home)
    try:
        assert accounts.verify_password(accounts.get_user(db, "bob")["password_hash"], "bob's password")
        result = hearth(home, "user", "passwd", "bob", "--password-stdin", stdin="a new password\n")
        assert result.returncode == 0, result.stderr
        stored = accounts.get_user(db, "bob")["password_hash"]
        assert accounts.verify_password(stored, "a new password")
        assert not accounts.verify_password(stored, "bob's password")

        result = hearth(home, "user", "del", "bob", "--yes")
        assert result.returncode == 0, result.stderr
        assert accounts.get_user(db, "bob") is None
    finally:
        db.close()
    assert [line.split()[0] for line in hearth(home, "user", "list").stdout.splitlines()[1:]] == ["alice"]

    missing = hearth(home, "user", "del", "bob", "--yes")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "hearth: no user named 'bob'"


def test_cli_reports_bad_input_with_exit_codes(home):
    assert hearth(home, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    duplicate = hearth(home, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    bad_name = hearth(home, "user", "add", "no/slashes", "--password-stdin", stdin=PASSWORD + "\n")
    assert bad_name.returncode == 2 and "lowercase letters" in bad_name.stderr
    short = hearth(home, "user", "add", "bob", "--password-stdin", stdin="short\n")
    assert short.returncode == 2 and "at least 8" in short.stderr
    empty = hearth(home, "user", "add", "bob", "--password-stdin", stdin="")
    assert empty.returncode == 2
    assert [line.split()[0] for line in hearth(home, "user", "list").stdout.splitlines()[1:]] == ["alice"]


def test_cli_without_a_terminal_needs_flags(home):
    result = hearth(home, "user", "add", "alice")  # stdin is /dev/null: no terminal
    assert result.returncode == 2
    assert "--password-stdin" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert hearth(home, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    assert hearth(home, "user", "passwd", "alice").returncode == 2
    refused = hearth(home, "user", "del", "alice")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "alice" in hearth(home, "user", "list").stdout


def test_cli_token_add_prints_a_usable_app_password(home):
    assert hearth(home, "user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    added = hearth(home, "token", "add", "alice", "--label", "phone")
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert added.stdout == secret + "\n" and secret.startswith("hearth-")
    assert "only" in added.stderr and secret not in added.stderr

    db = open_home_db(home)
    try:
        found = accounts.find_app_password(db, secret)
        assert found["user"] == "alice" and found["label"] == "phone"

        listing = hearth(home, "token", "list", "alice")
        rows = listing.stdout.splitlines()
        assert rows[0].split() == ["ID", "LABEL", "CREATED", "LAST", "USED"]
        assert rows[1].split()[:2] == [str(found["id"]), "phone"] and rows[1].endswith("never")

        assert hearth(home, "token", "revoke", "alice", str(found["id"])).returncode == 0
        assert accounts.find_app_password(db, secret) is None
    finally:
        db.close()
    again = hearth(home, "token", "revoke", "alice", str(found["id"]))
    assert again.returncode == 1 and "no active app password" in again.stderr
    assert hearth(home, "token", "add", "nobody", "--label", "x").returncode == 1
