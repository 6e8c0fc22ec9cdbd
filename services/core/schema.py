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


@core()
def m002_auth_failures(db):
    """Failed logins and link passwords per client address (services/core/ratelimit), shared by every daemon."""
    db.execute("""
        CREATE TABLE auth_failures (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            at REAL NOT NULL
        )""")
    db.execute("CREATE INDEX auth_failures_key ON auth_failures(kind, key, at)")
    db.execute("CREATE INDEX auth_failures_at ON auth_failures(at)")


@core()
def m003_user_addresses(db):
    """Users' registered email addresses (services/core/addresses.py), in the comparable form: each belongs
    to one user, and scheduling finds the user by it."""
    db.execute("""
        CREATE TABLE user_addresses (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            address TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX user_addresses_user ON user_addresses(user_id)")


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


@files(transactional=False)
def m002_deletable_folders(db):
    """Folders can be deleted to a trash (deleted_at) and renamed: a folder's name is unique among the
    owner's live folders only, so a deleted folder waits in the trash while its name is used again.
    Ids become AUTOINCREMENT: a device that remembers a purged folder's id can never meet a new folder
    under it.

    SQLite cannot drop a table's UNIQUE constraint, so the table is rebuilt the way SQLite's ALTER TABLE
    page prescribes: with foreign keys off (else dropping the old table would cascade into every entry)
    and checked before the commit. Not transactional for the migration runner because the pragma only
    works outside a transaction; it runs its own, and a rerun after a crash finds the work done."""
    if "deleted_at" in db["folders"].columns_dict:
        return
    db.execute("PRAGMA foreign_keys = OFF")
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("""
                CREATE TABLE folders_rebuilt (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    owner TEXT NOT NULL,
                    name TEXT NOT NULL,
                    created_at TEXT NOT NULL,
                    seq INTEGER NOT NULL DEFAULT 0,
                    deleted_at TEXT
                )""")
            db.execute("""INSERT INTO folders_rebuilt (id, owner, name, created_at, seq)
                          SELECT id, owner, name, created_at, seq FROM folders""")
            db.execute("DROP TABLE folders")
            db.execute("ALTER TABLE folders_rebuilt RENAME TO folders")
            db.execute("CREATE UNIQUE INDEX folders_live_name ON folders(owner, name) WHERE deleted_at IS NULL")
            db.execute("CREATE INDEX folders_deleted ON folders(deleted_at) WHERE deleted_at IS NOT NULL")
            broken = db.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"rebuilding folders broke {len(broken)} references: {broken[:3]}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    finally:
        db.execute("PRAGMA foreign_keys = ON")


@files()
def m003_chunk_uploads(db):
    """Who sent which chunk's bytes (services/core/tree/holders.py): a commit may name only chunks its
    user uploaded or can read in a folder, so a chunk id alone never gives access to content."""
    db.execute("""
        CREATE TABLE chunk_uploads (
            uploader TEXT NOT NULL,
            chunk_id TEXT NOT NULL,
            PRIMARY KEY (uploader, chunk_id)
        ) WITHOUT ROWID""")
    db.execute("CREATE INDEX chunk_uploads_chunk ON chunk_uploads(chunk_id)")


@files()
def m004_tree_stamps(db):
    """Directory stamps, folder sizes and file ids (services/core/tree/stamps.py), computed once here
    from the journal for the folders that already exist; every change keeps them current after."""
    from .tree.stamps import ancestors, new_instance_id

    db.execute("CREATE TABLE tree_meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID")
    db.execute("""
        CREATE TABLE tree_dirs (
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            seq INTEGER NOT NULL,
            size INTEGER NOT NULL,
            file_id INTEGER NOT NULL,
            PRIMARY KEY (folder_id, path)
        ) WITHOUT ROWID""")
    db.execute("CREATE TABLE tree_roots (user TEXT PRIMARY KEY, file_id INTEGER NOT NULL) WITHOUT ROWID")
    db.execute("ALTER TABLE entries ADD COLUMN file_id INTEGER")
    db.execute("UPDATE entries SET file_id = id")  # entry ids are unique: the existing files keep them
    last = db.execute("SELECT COALESCE(MAX(id), 0) FROM entries").fetchone()[0]
    stamps: dict[tuple[int, str], list[int]] = {}
    for folder, seq in db.execute("SELECT id, seq FROM folders").fetchall():
        stamps[(folder, "")] = [seq, 0]
    for folder, path, kind, deleted, size, seq in db.execute(
            "SELECT folder_id, path, kind, deleted, size, seq FROM entries").fetchall():
        live_bytes = size if kind == "file" and not deleted else 0
        for directory in ancestors(path) + ([path] if kind == "dir" else []):
            stamp = stamps.setdefault((folder, directory), [0, 0])
            stamp[0], stamp[1] = max(stamp[0], seq), stamp[1] + live_bytes
    rows = []
    for (folder, path), (seq, size) in stamps.items():
        last += 1
        rows.append((folder, path, seq, size, last))
    db.conn.executemany("INSERT INTO tree_dirs (folder_id, path, seq, size, file_id) VALUES (?, ?, ?, ?, ?)", rows)
    users = db.execute("SELECT owner FROM folders UNION SELECT grantee FROM folder_shares").fetchall()
    for user, in users:
        last += 1
        db.execute("INSERT INTO tree_roots (user, file_id) VALUES (?, ?)", [user, last])
    db.conn.executemany("INSERT INTO tree_meta (name, value) VALUES (?, ?)",
                        [("instance_id", new_instance_id()), ("last_file_id", last)])


@files()
def m005_entries_by_file_id(db):
    """Entries by file id: the Nextcloud apps name a file by its oc:fileid (versions, trash), and a restore
    asks whether a trashed file's id is free again; without it each of these reads every entry."""
    db.execute("CREATE INDEX entries_file_id ON entries(file_id)")


@files()
def m006_deletion_runs(db):
    """Deletions WebDAV and Nextcloud clients send, grouped into runs by folder, user and credential
    (services/core/tree/deletion_runs.py): a run that deletes most of a folder is kept, shown and undone
    in one step. `credential` is the app password's id, 0 for the account's own password."""
    db.execute("""
        CREATE TABLE deletion_runs (
            id INTEGER PRIMARY KEY,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            user TEXT NOT NULL,
            credential INTEGER NOT NULL,
            device TEXT NOT NULL,
            started_at REAL NOT NULL,
            last_at REAL NOT NULL,
            files INTEGER NOT NULL,
            tracked INTEGER NOT NULL,
            flagged_at REAL,
            undone_at REAL
        )""")
    db.execute("CREATE INDEX deletion_runs_open ON deletion_runs(folder_id, user, credential, last_at)")
    db.execute("CREATE INDEX deletion_runs_flagged ON deletion_runs(user, id) WHERE flagged_at IS NOT NULL")
    db.execute("CREATE INDEX deletion_runs_ended ON deletion_runs(last_at) WHERE flagged_at IS NULL")
    db.execute("""
        CREATE TABLE deletion_run_files (
            run_id INTEGER NOT NULL REFERENCES deletion_runs(id) ON DELETE CASCADE,
            entry_id INTEGER NOT NULL REFERENCES entries(id) ON DELETE CASCADE,
            marker_id INTEGER NOT NULL,
            file_id INTEGER NOT NULL,
            PRIMARY KEY (run_id, entry_id)
        ) WITHOUT ROWID""")
    db.execute("CREATE INDEX deletion_run_files_entry ON deletion_run_files(entry_id)")


@files()
def m007_every_user_has_a_root_id(db):
    """A user's root gets its file id when the user is made, not when their first folder is: the apps
    read oc:id of the root of a brand-new account (iOS keys its directory records by it), and the
    accounts code need not know the tree exists. Users made before get theirs here."""
    db.execute("""
        CREATE TRIGGER users_get_a_root_file_id AFTER INSERT ON users
        WHEN NOT EXISTS (SELECT 1 FROM tree_roots WHERE user = NEW.name)
        BEGIN
            UPDATE tree_meta SET value = value + 1 WHERE name = 'last_file_id';
            INSERT INTO tree_roots (user, file_id) SELECT NEW.name, value FROM tree_meta WHERE name = 'last_file_id';
        END""")
    for user, in db.execute("SELECT name FROM users WHERE name NOT IN (SELECT user FROM tree_roots)").fetchall():
        db.execute("UPDATE tree_meta SET value = value + 1 WHERE name = 'last_file_id'")
        db.execute("INSERT INTO tree_roots (user, file_id) SELECT ?, value FROM tree_meta WHERE name = 'last_file_id'",
                   [user])


@files()
def m008_blob_migration(db):
    """The chunk store's migration to another backend (services/core/blob_migration.py): one row, read by
    every daemon's store before each use, so a running daemon learns that a migration started and ended."""
    db.execute("""
        CREATE TABLE blob_migration (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            source TEXT NOT NULL,
            target TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('copying', 'done')),
            started_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            chunks_total INTEGER NOT NULL DEFAULT 0,
            chunks_done INTEGER NOT NULL DEFAULT 0,
            runs INTEGER NOT NULL DEFAULT 1
        )""")


@files()
def m009_chunk_deletions(db):
    """How many chunks garbage collection and account deletions removed (holders.forget_chunk), so a
    process believes what it put only while nothing was deleted since (tree/recent_chunks.py)."""
    db.execute("""
        CREATE TABLE chunk_deletions (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            count INTEGER NOT NULL
        )""")
    db.execute("INSERT INTO chunk_deletions (id, count) VALUES (1, 0)")


dav = Migrations("dav")


@dav()
def m001_collections(db):
    """Calendars and address books, their items, change log and shares (services/dav/store)."""
    # AUTOINCREMENT: a collection id is never reused, so a sync token of a deleted
    # collection can never pass for a token of a new one.
    db.execute("""
        CREATE TABLE dav_collections (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('calendar', 'addressbook')),
            name TEXT NOT NULL,
            displayname TEXT,
            description TEXT,
            color TEXT,
            timezone TEXT,
            components TEXT NOT NULL,
            created_at TEXT NOT NULL,
            seq INTEGER NOT NULL DEFAULT 0,
            UNIQUE (owner, kind, name)
        )""")
    db.execute("""
        CREATE TABLE dav_items (
            collection_id INTEGER NOT NULL REFERENCES dav_collections(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            uid TEXT NOT NULL,
            etag TEXT NOT NULL,
            component TEXT NOT NULL CHECK (component IN ('VEVENT', 'VTODO', 'VJOURNAL', 'VCARD')),
            raw BLOB NOT NULL,
            first_start INTEGER,
            last_end INTEGER,
            created_at TEXT NOT NULL,
            modified_at TEXT NOT NULL,
            seq INTEGER NOT NULL,
            PRIMARY KEY (collection_id, name)
        )""")
    db.execute("CREATE UNIQUE INDEX dav_items_uid ON dav_items(collection_id, uid)")
    # Time-range queries: "ends after the range starts" is the selective half for a
    # calendar full of past events; first_start rides along so the other half is
    # checked from the index without reading the row.
    db.execute("CREATE INDEX dav_items_range ON dav_items(collection_id, last_end, first_start)")
    db.execute("""
        CREATE TABLE dav_changes (
            collection_id INTEGER NOT NULL REFERENCES dav_collections(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            name TEXT NOT NULL,
            deleted INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (collection_id, seq)
        ) WITHOUT ROWID""")
    db.execute("CREATE UNIQUE INDEX dav_changes_name ON dav_changes(collection_id, name)")
    db.execute("""
        CREATE TABLE dav_shares (
            collection_id INTEGER NOT NULL REFERENCES dav_collections(id) ON DELETE CASCADE,
            grantee TEXT NOT NULL,
            mode TEXT NOT NULL CHECK (mode IN ('read', 'read-write')),
            PRIMARY KEY (collection_id, grantee)
        )""")
    db.execute("CREATE INDEX dav_shares_grantee ON dav_shares(grantee)")


@dav()
def m002_item_revisions(db):
    """Replaced and deleted calendar objects and vCards, restorable until retention drops them."""
    # No foreign key to dav_collections on purpose: a revision must outlive its
    # collection, so a calendar deleted by mistake can be brought back. The
    # owner, kind and collection name are copied for that reason.
    db.execute("""
        CREATE TABLE dav_revisions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('calendar', 'addressbook')),
            collection_id INTEGER NOT NULL,
            collection_name TEXT NOT NULL,
            collection_displayname TEXT,
            name TEXT NOT NULL,
            uid TEXT NOT NULL,
            etag TEXT NOT NULL,
            component TEXT NOT NULL,
            raw BLOB NOT NULL,
            reason TEXT NOT NULL CHECK (reason IN ('overwritten', 'deleted', 'collection-deleted')),
            replaced_at TEXT NOT NULL
        )""")
    db.execute("CREATE INDEX dav_revisions_owner ON dav_revisions(owner, id)")
    db.execute("CREATE INDEX dav_revisions_replaced ON dav_revisions(replaced_at)")



@dav()
def m003_event_instances(db):
    """The instances of each stored event over the years around the day it was written
    (services/dav/instancerows.py), so a time-range query there is answered without parsing the event.
    An item without rows, or whose rows were computed for other bytes (the ETag differs), is read the
    slow exact way: items stored before this migration keep answering correctly from the start."""
    # covered_from / covered_until: the span (UTC epoch seconds, NULL = unbounded) within which every
    # instance has a row; outside it an instance may exist that has none (an empty span: an item with too
    # many instances). years_from: the first of the years around now the rows were computed for, so the
    # DAV daemon recomputes them as the years move on, and computes them for items stored before.
    db.execute("""
        CREATE TABLE dav_instance_sets (
            collection_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            etag TEXT NOT NULL,
            covered_from INTEGER,
            covered_until INTEGER,
            years_from INTEGER NOT NULL,
            PRIMARY KEY (collection_id, name),
            FOREIGN KEY (collection_id, name) REFERENCES dav_items(collection_id, name)
                ON DELETE CASCADE ON UPDATE CASCADE
        ) WITHOUT ROWID""")
    db.execute("""
        CREATE TABLE dav_instances (
            collection_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            start INTEGER NOT NULL,
            end INTEGER NOT NULL,
            flags INTEGER NOT NULL,
            FOREIGN KEY (collection_id, name) REFERENCES dav_instance_sets(collection_id, name)
                ON DELETE CASCADE ON UPDATE CASCADE
        )""")
    # Covering: a query reads the rows of an item near its range from the index alone.
    db.execute("CREATE INDEX dav_instances_item ON dav_instances(collection_id, name, end, start, flags)")

dav_scheduling = Migrations("dav_scheduling")


@dav_scheduling()
def m001_scheduling(db):
    """RFC 6638 scheduling (services/dav/scheduling): the names of the schedule inbox and outbox
    become reserved in calendar homes, and iMIP messages wait in a queue until an SMTP server takes them."""
    # A calendar a user made before the names were reserved keeps its items under a new name.
    for name in ("inbox", "outbox"):
        db.execute("""UPDATE dav_collections SET name = name || '-calendar'
                      WHERE kind = 'calendar' AND name = ?""", [name])
    db.execute("""
        CREATE TABLE dav_outgoing_mail (
            id INTEGER PRIMARY KEY,
            sender TEXT NOT NULL,
            recipient TEXT NOT NULL,
            method TEXT NOT NULL,
            message BLOB NOT NULL,
            created_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL,
            last_error TEXT
        )""")
    db.execute("CREATE INDEX dav_outgoing_mail_due ON dav_outgoing_mail(next_attempt_at)")


@dav_scheduling()
def m002_schedule_tags(db):
    """Schedule-Tag (RFC 6638 §3.2.10) of scheduling object resources: it changes when the organizer
    changes the event, not when an attendee's reply only updates a PARTSTAT."""
    db.execute("""
        CREATE TABLE dav_schedule_tags (
            collection_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            tag TEXT NOT NULL,
            PRIMARY KEY (collection_id, name),
            FOREIGN KEY (collection_id, name) REFERENCES dav_items(collection_id, name)
                ON DELETE CASCADE ON UPDATE CASCADE
        ) WITHOUT ROWID""")


dav_sharing = Migrations("dav_sharing")


@dav_sharing()
def m001_personal_properties(db):
    """A user's own values of a collection's display properties (CalendarServer sharing §5.5.3): a sharee's
    name and colour for a calendar shared with them, anyone's place for it in their list (Apple's
    calendar-order). The owner's values stay in dav_collections, and are what the others see by default."""
    db.execute("""
        CREATE TABLE dav_personal_properties (
            collection_id INTEGER NOT NULL REFERENCES dav_collections(id) ON DELETE CASCADE,
            user TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (collection_id, user, name)
        ) WITHOUT ROWID""")
    db.execute("CREATE INDEX dav_personal_properties_user ON dav_personal_properties(user)")


sessions = Migrations("sessions")


@sessions()
def m001_sessions(db):
    """Web UI login sessions (services/core/sessions): only a hash of the cookie is stored."""
    db.execute("""
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,
            csrf_token TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            expires_at REAL NOT NULL
        )""")
    db.execute("CREATE INDEX sessions_user ON sessions(user_id)")
    db.execute("CREATE INDEX sessions_expires ON sessions(expires_at)")


links = Migrations("links")


@links()
def m001_share_links(db):
    """Public share links to a file or folder of a user's tree (services/files/links)."""
    db.execute("""
        CREATE TABLE share_links (
            id INTEGER PRIMARY KEY,
            token TEXT NOT NULL UNIQUE,
            owner TEXT NOT NULL,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            is_dir INTEGER NOT NULL,
            mode TEXT NOT NULL CHECK (mode IN ('read', 'read-write', 'upload-only')),
            label TEXT NOT NULL DEFAULT '',
            password_hash TEXT,
            expires_at TEXT,
            downloads INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )""")
    db.execute("CREATE INDEX share_links_owner ON share_links(owner, id)")


@links()
def m002_hashed_tokens(db):
    """Share tokens are stored as SHA-256 hashes and their first characters (to tell links apart); the
    plaintext is overwritten in place, its old bytes zeroed (secure_delete) rather than left in free space."""
    from .accounts import token_hash

    db.execute("PRAGMA secure_delete = ON")
    db.execute("ALTER TABLE share_links RENAME COLUMN token TO token_hash")
    db.execute("ALTER TABLE share_links ADD COLUMN token_prefix TEXT NOT NULL DEFAULT ''")
    for link_id, token in db.execute("SELECT id, token_hash FROM share_links").fetchall():
        db.execute("UPDATE share_links SET token_hash = ?, token_prefix = ? WHERE id = ?",
                   [token_hash(token), token[:4], link_id])

files_webdav = Migrations("files_webdav")


@files_webdav()
def m001_properties_and_locks(db):
    """WebDAV access to the file tree (services/files): dead properties set by PROPPATCH, and write locks.
    Both are keyed by (folder, folder-relative path), '' being the folder itself."""
    db.execute("""
        CREATE TABLE files_properties (
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            name TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (folder_id, path, name)
        ) WITHOUT ROWID""")
    db.execute("""
        CREATE TABLE files_locks (
            token TEXT PRIMARY KEY,
            folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
            path TEXT NOT NULL,
            principal TEXT NOT NULL,
            scope TEXT NOT NULL CHECK (scope IN ('exclusive', 'shared')),
            depth TEXT NOT NULL CHECK (depth IN ('0', 'infinity')),
            owner TEXT NOT NULL,
            timeout INTEGER NOT NULL,
            expires_at REAL NOT NULL
        )""")
    db.execute("CREATE INDEX files_locks_path ON files_locks(folder_id, path)")


# An entry's parent directory with its trailing slash ('a/b/' for 'a/b/c.txt', '' at the top): rtrim
# strips every character but '/' from the right. Queries must spell it exactly so (SQLite matches
# index expressions as written); services/files/resources.py imports it from here.
ENTRY_PARENT = "rtrim(path, replace(path, '/', ''))"


@files_webdav()
def m002_entries_by_parent(db):
    """A directory's live members without reading what lies deeper (PROPFIND Depth 1 on a big tree)."""
    db.execute(f"CREATE INDEX files_entries_parent ON entries(folder_id, {ENTRY_PARENT}) WHERE deleted = 0")


@files_webdav()
def m003_revision_checksums(db):
    """The OC-Checksum a client sent with a file's bytes (verified), as `TYPE:hex`, for the revision it
    made: Nextcloud clients read it back (oc:checksums) to tell an identical file from a conflict."""
    db.execute("""
        CREATE TABLE files_checksums (
            revision_id INTEGER PRIMARY KEY REFERENCES revisions(id) ON DELETE CASCADE,
            checksum TEXT NOT NULL
        )""")


login_flows = Migrations("login_flows")


@login_flows()
def m001_login_flows(db):
    """Nextcloud Login Flow v2 (services/api/nextcloud/flows): a device waits, polling with one token, while
    its user approves in the web UI at a URL holding another; both are stored as SHA-256 hashes only."""
    db.execute("""
        CREATE TABLE login_flows (
            id INTEGER PRIMARY KEY,
            poll_token_hash TEXT NOT NULL UNIQUE,
            login_token_hash TEXT NOT NULL UNIQUE,
            device TEXT NOT NULL,
            created_at REAL NOT NULL,
            approved_by INTEGER REFERENCES users(id) ON DELETE CASCADE
        )""")
    db.execute("CREATE INDEX login_flows_created ON login_flows(created_at)")


# Every daemon applies these at start; later subsystems append their own sets.
MIGRATION_SETS = (core, files, dav, dav_scheduling, dav_sharing, sessions, links, files_webdav, login_flows)
