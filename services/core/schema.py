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


files = Migrations("files")


@files()
def m001_tree(db):
    """Synced folders and their journal (services/core/tree)."""
    db.execute("""
        CREATE TABLE folders (
            id INTEGER PRIMARY KEY,
            owner TEXT NOT NULL,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            seq INTEGER NOT NULL DEFAULT 0,
            UNIQUE (owner, name)
        )""")
    db.execute("""
        CREATE TABLE folder_shares (
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            grantee TEXT NOT NULL,
            mode TEXT NOT NULL CHECK (mode IN ('ro', 'rw')),
            PRIMARY KEY (folder_id, grantee)
        )""")
    db.execute("CREATE INDEX folder_shares_grantee ON folder_shares(grantee)")
    db.execute("""
        CREATE TABLE entries (
            id INTEGER PRIMARY KEY,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('file', 'dir')),
            revision_id INTEGER,
            deleted INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL DEFAULT 0,
            mtime_ns INTEGER NOT NULL DEFAULT 0,
            executable INTEGER NOT NULL DEFAULT 0,
            chunks TEXT NOT NULL DEFAULT '[]',
            device TEXT NOT NULL DEFAULT '',
            seq INTEGER NOT NULL,
            UNIQUE (folder_id, path)
        )""")
    db.execute("CREATE INDEX entries_changes ON entries(folder_id, seq)")
    db.execute("""
        CREATE TABLE revisions (
            id INTEGER PRIMARY KEY,
            entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            path TEXT NOT NULL,
            kind TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            size INTEGER NOT NULL DEFAULT 0,
            mtime_ns INTEGER NOT NULL DEFAULT 0,
            executable INTEGER NOT NULL DEFAULT 0,
            chunks TEXT NOT NULL DEFAULT '[]',
            device TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX revisions_entry ON revisions(entry_id, id)")
    db.execute("CREATE INDEX revisions_created ON revisions(created_at)")
    db.execute("""
        CREATE TABLE revision_chunks (
            revision_id INTEGER NOT NULL REFERENCES revisions(id) ON DELETE CASCADE,
            chunk_id TEXT NOT NULL,
            PRIMARY KEY (revision_id, chunk_id)
        ) WITHOUT ROWID""")
    db.execute("CREATE INDEX revision_chunks_chunk ON revision_chunks(chunk_id)")


# Every daemon applies these at start; later subsystems append their own sets.
MIGRATION_SETS = (core, files)
