"""The real Nextcloud command-line client (`nextcloudcmd`, Debian nextcloud-desktop-cmd) logging in to
`hearth up`: discovery and the user, as the front end's access log records them.

Whether the sync itself then succeeds is the file tree's business; this checks
that the client gets past everything it asks before its first listing, with
the account password and with an app password.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from contextlib import contextmanager

import pytest

from tests.installation import ADMIN_PASSWORD, Installation, free_port, running

ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<target>\S+) HTTP/1\.1" (?P<status>\d{3}) .*mirall/3')


@contextmanager
def hearth_for_nextcloudcmd(tmp_path_factory, name: str):
    """`hearth up` on a free loopback port (skipped where nextcloudcmd is missing), as its `.url`."""
    if shutil.which("nextcloudcmd") is None:
        pytest.skip("nextcloudcmd is not installed (Debian package nextcloud-desktop-cmd; .ci/run installs it)")
    port = free_port()
    installation = Installation(tmp_path_factory.mktemp(name), textwrap.dedent(f"""\
        data_dir = "var"
        [front]
        listen = "127.0.0.1:{port}"
        [supervisor]
        ready_timeout = 30
        """))
    installation.url = f"http://127.0.0.1:{port}"
    with running(installation):
        yield installation


@pytest.fixture(scope="module")
def hearth(tmp_path_factory):
    with hearth_for_nextcloudcmd(tmp_path_factory, "nextcloudcmd") as installation:
        yield installation


def client_requests(hearth: Installation) -> list[tuple[str, str, int]]:
    log = (hearth.var / "log" / "front.log").read_text(errors="replace")
    return [(m["method"], m["target"], int(m["status"])) for m in map(ACCESS.search, log.splitlines()) if m]


@pytest.mark.parametrize("kind", ["account password", "app password"])
def test_nextcloudcmd_gets_past_status_capabilities_and_the_user(hearth, kind, tmp_path):
    password = ADMIN_PASSWORD if kind == "account password" else \
        hearth.ok("token", "add", "admin", "--label", "nextcloudcmd interop").stdout.strip()
    before = len(client_requests(hearth))
    local = tmp_path / "sync"
    local.mkdir()
    subprocess.run(["nextcloudcmd", "--non-interactive", "--max-sync-retries", "1", "-u", "admin", "-p", password,
                    str(local), hearth.url], capture_output=True, text=True, timeout=120)
    # the front writes each access line once the response is sent: wait for the listing's
    requests = hearth.wait_for(lambda: [r for r in client_requests(hearth)[before:] if r[0] == "PROPFIND"]
                               and client_requests(hearth)[before:], what="the client's PROPFIND in the log")
    assert requests[:4] == [("GET", "/status.php", 200), ("GET", "/ocs/v1.php/cloud/capabilities?format=json", 200),
                            ("GET", "/ocs/v1.php/cloud/user?format=json", 200),
                            ("PROPFIND", "/remote.php/dav/files/admin/", requests[3][2])], requests
