"""The real Nextcloud command-line client (`nextcloudcmd`, Debian nextcloud-desktop-cmd) logging in to
`hearth up`: discovery and the user, as the front end's access log records them.

Whether the sync itself then succeeds is the file tree's business; this checks
that the client gets past everything it asks before its first listing, with
the account password and with an app password.
"""
from __future__ import annotations

import pytest

from tests.installation import ADMIN_PASSWORD
from tests.nextcloudcmd import client_requests, hearth_for_nextcloudcmd, nextcloudcmd


@pytest.fixture(scope="module")
def hearth(tmp_path_factory):
    with hearth_for_nextcloudcmd(tmp_path_factory, "nextcloudcmd") as installation:
        yield installation


@pytest.mark.parametrize("kind", ["account password", "app password"])
def test_nextcloudcmd_gets_past_status_capabilities_and_the_user(hearth, kind, tmp_path):
    password = ADMIN_PASSWORD if kind == "account password" else \
        hearth.ok("token", "add", "admin", "--label", "nextcloudcmd interop").stdout.strip()
    before = len(client_requests(hearth))
    local = tmp_path / "sync"
    local.mkdir()
    nextcloudcmd(local, hearth.url, "admin", password, tmp_path / "nextcloudcmd.log", timeout=120)
    # the front writes each access line once the response is sent: wait for the listing's
    requests = hearth.wait_for(lambda: [r for r in client_requests(hearth)[before:] if r[0] == "PROPFIND"]
                               and client_requests(hearth)[before:], what="the client's PROPFIND in the log")
    assert requests[:4] == [("GET", "/status.php", 200), ("GET", "/ocs/v1.php/cloud/capabilities?format=json", 200),
                            ("GET", "/ocs/v1.php/cloud/user?format=json", 200),
                            ("PROPFIND", "/remote.php/dav/files/admin/", requests[3][2])], requests
