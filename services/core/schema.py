"""The shared database's tables, as named migrations (never edit one that shipped: add a new one)."""
from sqlite_utils.migrations import Migrations

core = Migrations("core")


@core()
def m001_accounts(db):
    db.execute("""
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            is_admin INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        )""")
    db.execute("""
        CREATE TABLE app_passwords (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            label TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        )""")
    db.execute("CREATE INDEX app_passwords_user ON app_passwords(user_id)")


# Every daemon applies these at start; later subsystems append their own sets.
MIGRATION_SETS = (core,)
