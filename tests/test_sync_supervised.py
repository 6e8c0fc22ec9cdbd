"""The whole path a household uses: `hearth up` runs the sync server behind the front end, and a
sync client as a `[[service]]` with an app password in a token file (as the README shows); a
second device syncs through the front end's one port, long poll included."""
from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

from tests.installation import Installation, free_port, http_get, running
from tests.sync_harness import Client
from tests.test_sync_server import PASSWORDS


def test_client_under_the_supervisor_syncs_through_the_front_end(tmp_path: Path):
    front = free_port()
    synced, token = tmp_path / "Documents", tmp_path / "token"
    synced.mkdir()
    suite = Installation(tmp_path, textwrap.dedent(f"""\
        data_dir = "var"
        [front]
        listen = "127.0.0.1:{front}"
        [supervisor]
        ready_timeout = 30

        [[service]]
        name = "sync_documents"
        command = ["{sys.executable}", "-m", "services.cli", "sync", "{synced}", "--server",
                   "http://127.0.0.1:{front}", "--user", "alice", "--token-file", "{token}",
                   "--folder", "Docs", "--device", "desktop"]
        requires = ["front"]
        """))
    suite.ok("init")
    suite.hearth("user", "add", "alice", "--password-stdin", input=PASSWORDS["alice"] + "\n", check=True)
    token.write_text(suite.ok("token", "add", "alice", "--label", "desktop").stdout.strip() + "\n")

    with running(suite):
        (synced / "from-desktop.txt").write_text("written on the desktop\n")
        phone = Client(SimpleNamespace(port=front), tmp_path / "phone", device="phone")
        suite.wait_for(lambda: phone.once() and (phone.root / "from-desktop.txt").exists(), timeout=30,
                       what="the desktop's file to reach the phone through the front end")
        assert (phone.root / "from-desktop.txt").read_text() == "written on the desktop\n"

        (phone.root / "from-phone.txt").write_text("written on the phone\n")
        phone.once()
        suite.wait_for(lambda: (synced / "from-phone.txt").exists(), timeout=10,
                       what="the phone's file to reach the supervised client (change feed through the front)")
        assert (synced / "from-phone.txt").read_text() == "written on the phone\n"

        rows = suite.status_rows()
        assert rows["sync_documents"][1] == "running", rows
        status = phone.status()  # the phone's own directory, after --once
        assert status.returncode == 0 and "in sync" in status.stdout, status.stdout
        desktop = Client(SimpleNamespace(port=front), synced, device="desktop")
        suite.wait_for(lambda: desktop.status().returncode == 0, timeout=10, what="the desktop to say in sync")
        assert "running (pid" in desktop.status().stdout
        assert http_get(front, "/healthz")[0] == 200
    assert "not running" in Client(SimpleNamespace(port=front), synced).status().stdout
    assert not list((tmp_path / "var" / "run").glob("sync_documents*.pid"))
    assert json.loads((tmp_path / "var" / "run" / "sync_documents.state").read_text())["state"] != "running"
