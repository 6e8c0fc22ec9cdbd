"""`hearth init`: the data directory, a hearth.toml to edit, and the first admin."""
from __future__ import annotations

import argparse
import os
import secrets
from pathlib import Path

from .config import DEFAULT_CONFIG_NAME, Config, ConfigError, load_config
from .db import db_path, migrate, open_db, write
from .private import make_private, private_dir
from .schema import MIGRATION_SETS

ADMIN_NAME = "admin"

STARTER_CONFIG = """\
# hearth configuration. deploy/hearth.toml.example lists every key with its
# default; each can also be set with a HEARTH_… environment variable
# (`hearth config --help` lists them, `hearth config` shows the result).

data_dir = "./var"

# The one door: every browser, phone and tunnel comes in here.
[front]
listen = "127.0.0.1:8080"

# The API daemon sits behind the front end, on a Unix socket under data_dir.
[api]
listen = "unix:run/api.sock"

# Your own programs run like ours: supervised, logged, rotated.
# [[service]]
# name = "hello"
# command = ["python3", "-m", "http.server", "9001", "--bind", "127.0.0.1"]
# health = "http://127.0.0.1:9001/"
# listen = "127.0.0.1:9001"   # where it listens: the front end routes to it
# route = "/hello/"            # http://127.0.0.1:8080/hello/ reaches it
# strip_prefix = true
"""


def ensure_config_file(explicit: str | None) -> bool:
    """Write a starter hearth.toml when none is named and none exists here."""
    if explicit or os.environ.get("HEARTH_CONFIG") or Path(DEFAULT_CONFIG_NAME).exists():
        return False
    Path(DEFAULT_CONFIG_NAME).write_text(STARTER_CONFIG)
    return True


def ensure_initialised(config: Config) -> str | None:
    """Create directories, apply migrations, create the admin if there are no users.

    Returns the generated admin password (to be shown once), or None.
    """
    for sub in ("db", "blobs", "run", "log"):
        private_dir(config.data_path(sub))
    make_private(config.data_dir)  # an installation made before data was private becomes so
    path = db_path(config.data_dir)
    migrate(path, MIGRATION_SETS)
    db = open_db(path)
    try:
        password = None if db["users"].count else _create_first_admin(db)
    finally:
        db.close()
    give_to_daemon_user(config)
    return password


def _create_first_admin(db) -> str | None:
    """Create `admin`; its generated password (None when $HEARTH_ADMIN_PASSWORD chose it, or another
    process created the first user meanwhile)."""
    from .accounts import create_user, hash_password  # argon2 only when needed

    given = os.environ.get("HEARTH_ADMIN_PASSWORD")
    password = given or secrets.token_urlsafe(12)
    password_hash = hash_password(password)

    def create_first_admin(conn):
        if conn["users"].count == 0:
            create_user(conn, ADMIN_NAME, password_hash, admin=True)
            return True
        return False

    created = write(db, create_first_admin)
    return password if created and not given else None


def give_to_daemon_user(config: Config) -> None:
    """Run as root with `[supervisor] user`, hand the daemons what they write to that user.

    The daemons run as that user and write the database (with its -wal and -shm
    files), the blob store, and their sockets in run/; root created those. The
    data directory itself is 0700, so it is theirs too. Logs, pid files and the
    supervisor's state stay root's: the daemon wrappers, which keep root, write them."""
    user = config.supervisor.user
    if not user or os.geteuid() != 0:
        return
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise ConfigError(f"[supervisor] user {user!r} does not exist on this system") from None
    owner = (entry.pw_uid, entry.pw_gid)
    os.chown(config.data_dir, *owner)  # 0700: the daemons must be able to enter it
    for sub in ("db", "blobs"):
        for directory, _, files in os.walk(config.data_path(sub)):
            os.chown(directory, *owner)
            for name in files:
                os.chown(os.path.join(directory, name), *owner)
    os.chown(config.data_path("run"), *owner)


def run_init(args: argparse.Namespace) -> int:
    if ensure_config_file(args.config):
        print(f"wrote {DEFAULT_CONFIG_NAME}")
    config = load_config(args.config)
    password = ensure_initialised(config)
    print(f"data directory: {config.data_dir}")
    if password:
        print(f"admin password (shown once; change it with `hearth user passwd admin`): {password}")
    return 0
