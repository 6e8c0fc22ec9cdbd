"""Data at rest is private: whatever the umask hearth is started with, everything under var/ is its user's
alone (directories 0700, files 0600, generated scripts 0700), and an older installation is fixed by init."""
from __future__ import annotations

import base64
import http.client
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from services.core.tree import ChunkStore
from tests.installation import ADMIN_PASSWORD, Installation, clean_environ, free_port, running
from tests.stores import backend, home_store


def loose_umask() -> None:
    os.umask(0o022)


def modes(root: Path) -> dict[str, str]:
    """Every directory and regular file under root whose mode is not private: {path: octal mode}."""
    loose = {}
    for path in [root, *root.rglob("*")]:
        mode = path.lstat().st_mode
        wanted = {stat.S_ISDIR(mode): 0o700, stat.S_ISREG(mode): 0o700 if mode & 0o100 else 0o600}.get(True)
        if wanted is not None and stat.S_IMODE(mode) != wanted:
            loose[str(path.relative_to(root))] = oct(stat.S_IMODE(mode))
    return loose


def hearth(root: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "services.cli", "--config", str(root / "hearth.toml"), *args],
                            capture_output=True, text=True, cwd=root, timeout=90, preexec_fn=loose_umask,
                            env=clean_environ(HEARTH_ADMIN_PASSWORD=ADMIN_PASSWORD))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_init_under_umask_022_makes_a_private_data_directory(tmp_path):
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    hearth(tmp_path, "init")
    var = tmp_path / "var"
    assert (var / "db" / "hearth.sqlite3").exists()
    assert modes(var) == {}


def test_init_makes_an_older_world_readable_installation_private(tmp_path):
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    hearth(tmp_path, "init")
    var = tmp_path / "var"
    (var / "blobs" / "ab").mkdir()
    (var / "blobs" / "ab" / "chunk").write_bytes(b"someone's photo")
    (var / "log" / "files.log").write_text("a line\n")
    for path in [var, *var.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)
    assert modes(var)
    hearth(tmp_path, "init")
    assert modes(var) == {}


def test_a_running_installation_under_umask_022_writes_only_private_files(tmp_path):
    """Everything the daemons create while working: the database's WAL, blobs, logs, pid and state files."""
    port = free_port()
    installation = Installation(tmp_path, textwrap.dedent(f"""\
        data_dir = "var"
        [front]
        listen = "127.0.0.1:{port}"
        """))
    previous = os.umask(0o022)  # inherited by `hearth up`, and through it by every daemon
    try:
        with running(installation):
            auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()}
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            for method, path, body in (("MKCOL", "/files/admin/docs/", None),
                                       ("PUT", "/files/admin/docs/photo.jpg", os.urandom(200_000))):
                connection.request(method, path, body=body, headers=auth)
                response = connection.getresponse()
                response.read()
                assert response.status == 201, (method, response.status)
            connection.close()
            var = tmp_path / "var"
            store = home_store(installation.config)
            assert next(iter(store.stored()), None) and (var / "db" / "hearth.sqlite3-wal").exists()
            if isinstance(backend(store), ChunkStore):  # the photo's chunks are files here, whose modes count
                assert list((var / "blobs").rglob("*"))
            store.close()
            assert list((var / "log").glob("*.log")) and list((var / "run").glob("*.pid"))
            assert modes(var) == {}
    finally:
        os.umask(previous)
