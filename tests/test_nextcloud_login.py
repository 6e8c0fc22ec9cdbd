"""The Nextcloud apps' account setup against a real API daemon, replayed request by request.

The sequences are the ones the apps send (discovery, Login Flow v2 or v1, then
the user): Android and iOS differ in where the poll token goes and in the flow
they use from a web view. Approval is done as the web UI's page does it: a
session cookie and its CSRF token. The approval in a real browser is in
tests/test_web_ui.py.
"""
from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from urllib.parse import unquote_plus, urlencode, urlsplit
from xml.etree import ElementTree as ET

import pytest

from services.api.nextcloud.device_names import device_label
from services.api.nextcloud.flows import FLOW_LIFETIME
from tests.test_web_session import ApiDaemon, logged_in
from tests.daemons import serving

ANDROID_UA = "Mozilla/5.0 (Android) Nextcloud-android/33.0.1"
IOS_UA = "Mozilla/5.0 (iOS) Nextcloud-iOS/6.1.4"
DESKTOP_UA = ("Mozilla/5.0 (Linux) mirall/3.7.3git (Nextcloud, debian-6.1.0 ClientArchitecture: x86_64 "
              "OsArchitecture: x86_64)")
OCS = {"OCS-APIRequest": "true"}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    daemon = ApiDaemon(tmp_path_factory.mktemp("nextcloud-login"))
    with serving(daemon, "alice", "bob") as running:
        yield running
    assert "unhandled error" not in daemon.log()


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def ocs_data(body: bytes, statuscode: int) -> dict:
    document = json.loads(body)["ocs"]
    assert document["meta"]["status"] == "ok" and document["meta"]["message"] == "OK"
    assert document["meta"]["statuscode"] == statuscode
    return document["data"]


def discover(api: ApiDaemon, agent: str) -> None:
    """status.php, the captive-portal check and capabilities, as every app starts."""
    status, headers, body = api.exchange("GET", "/status.php", headers={"User-Agent": agent})
    assert status == 200 and headers["content-type"].startswith("application/json")
    info = json.loads(body)
    assert info["installed"] is True and info["maintenance"] is False and info["needsDbUpgrade"] is False
    assert info["version"] == "31.0.0.0" and info["versionstring"] == "31.0.0"
    assert info["productname"] == "Nextcloud" and info["edition"] == "" and info["extendedSupport"] is False
    status, _, body = api.exchange("GET", "/index.php/204", headers={"User-Agent": agent})
    assert (status, body) == (204, b"")
    status, headers, body = api.exchange("GET", "/ocs/v2.php/cloud/capabilities?format=json",
                                         headers={"User-Agent": agent, **OCS})
    assert status == 200
    capabilities = ocs_data(body, 200)["capabilities"]
    assert capabilities["core"]["webdav-root"] == "remote.php/webdav"
    assert isinstance(capabilities["core"]["pollinterval"], int)
    assert capabilities["dav"] == {"chunking": "1.0"}      # never bulkupload
    assert capabilities["files"]["bigfilechunking"] is True and "locking" not in capabilities["files"]
    assert capabilities["files"]["undelete"] is True and capabilities["files"]["versioning"] is True  # trash, versions
    assert capabilities["checksums"] == {"supportedTypes": ["SHA1"], "preferredUploadType": "SHA1"}
    assert capabilities["files_sharing"]["api_enabled"] is True and capabilities["files_sharing"]["resharing"] is False
    assert capabilities["files_sharing"]["public"]["enabled"] is True
    assert not {"end-to-end-encryption", "notify_push"} & set(capabilities)
    # Android revalidates its cached copy
    status, _, body = api.exchange("GET", "/ocs/v2.php/cloud/capabilities?format=json",
                                   headers={"User-Agent": agent, "If-None-Match": headers["etag"], **OCS})
    assert (status, body) == (304, b"")


def start_flow(api: ApiDaemon, agent: str) -> tuple[str, str, str]:
    """POST /index.php/login/v2: (poll token, poll endpoint path, login URL path)."""
    status, _, body = api.exchange("POST", "/index.php/login/v2", b"", headers={"User-Agent": agent})
    assert status == 200, body
    flow = json.loads(body)
    assert len(flow["poll"]["token"]) >= 64
    assert flow["poll"]["endpoint"] == f"http://127.0.0.1:{api.port}/index.php/login/v2/poll"
    login = urlsplit(flow["login"])
    assert f"{login.scheme}://{login.netloc}" == f"http://127.0.0.1:{api.port}"
    return flow["poll"]["token"], urlsplit(flow["poll"]["endpoint"]).path, login.path


def poll(api: ApiDaemon, endpoint: str, token: str, *, in_query: bool = False) -> tuple[int, bytes]:
    if in_query:   # iOS: the token in the query, an empty body
        status, _, body = api.exchange("POST", f"{endpoint}?{urlencode({'token': token})}", b"",
                                       headers={"User-Agent": IOS_UA})
    else:          # desktop and Android: a form body
        status, _, body = api.exchange("POST", endpoint, urlencode({"token": token}),
                                       headers={"Content-Type": "application/x-www-form-urlencoded",
                                                "User-Agent": ANDROID_UA})
    return status, body


def decide(api: ApiDaemon, login_path: str, approve: bool, user: str = "alice") -> tuple[int, dict]:
    """What the approval page does: see the page with the session, then POST the decision with its CSRF token."""
    cookie, csrf = logged_in(api, user)
    status, _, page = api.exchange("GET", login_path, headers=cookie)
    if status != 200:
        return status, {}
    status, _, body = api.exchange("POST", login_path, json.dumps({"approve": approve}),
                                   headers={**cookie, "X-CSRF-Token": csrf, "Content-Type": "application/json"})
    return status, json.loads(body)


def cloud_user(api: ApiDaemon, version: int, user: str, password: str) -> tuple[int, bytes]:
    status, _, body = api.exchange("GET", f"/ocs/v{version}.php/cloud/user?format=json",
                                   headers={**basic(user, password), **OCS})
    return status, body


@pytest.mark.parametrize("agent, token_in_query", [(ANDROID_UA, False), (IOS_UA, True)], ids=["android", "ios"])
def test_account_setup_with_login_flow_v2_as_the_phone_apps_send_it(api, agent, token_in_query):
    discover(api, agent)
    token, endpoint, login_path = start_flow(api, agent)
    assert poll(api, endpoint, token, in_query=token_in_query) == (404, b"[]")   # not approved yet

    # the browser opens the login URL: the web UI's login first, then the approval page naming the device
    status, headers, _ = api.exchange("GET", login_path)
    assert status == 303 and headers["location"] == f"/login?next={login_path}"
    cookie, _ = logged_in(api)
    status, _, page = api.exchange("GET", login_path, headers=cookie)
    assert status == 200 and f'content="{device_label(agent)}"'.encode() in page
    assert decide(api, login_path, True) == (200, {"approved": True, "device": device_label(agent)})

    status, body = poll(api, endpoint, token, in_query=token_in_query)
    assert status == 200, body
    credentials = json.loads(body)
    assert credentials["server"] == f"http://127.0.0.1:{api.port}" and credentials["loginName"] == "alice"
    assert poll(api, endpoint, token, in_query=token_in_query) == (404, b"[]")   # handed out once

    status, body = cloud_user(api, 2, credentials["loginName"], credentials["appPassword"])
    assert status == 200, body
    user = ocs_data(body, 200)
    assert user["id"] == "alice" and user["display-name"] == "alice" and user["enabled"] is True
    assert user["quota"]["quota"] == -3 and user["quota"]["used"] == 0   # no [sync] quota_mb: unlimited,
    if api.store.free_bytes() is None:  # an object store has no disk to fill: unlimited, as Nextcloud says
        assert user["quota"]["free"] == -3 and user["quota"]["total"] == 0
    else:  # but for the disk
        assert user["quota"]["free"] > 0 and user["quota"]["total"] == user["quota"]["free"]
    # (the next request, PROPFIND /remote.php/dav/files/alice/, is the files daemon's)


def test_desktop_client_with_the_account_password_reads_v1_and_the_user(api):
    """nextcloudcmd's order: status.php, v1 capabilities, v1 user, with Basic and the real password."""
    status, _, body = api.exchange("GET", "/ocs/v1.php/cloud/capabilities?format=json",
                                   headers={**basic("alice", "alice password"), **OCS, "User-Agent": DESKTOP_UA})
    assert status == 200 and ocs_data(body, 100)["capabilities"]["dav"]["chunking"] == "1.0"
    assert json.loads(body)["ocs"]["meta"]["totalitems"] == ""
    status, body = cloud_user(api, 1, "alice", "alice password")
    assert status == 200 and ocs_data(body, 100)["id"] == "alice"
    status, body = cloud_user(api, 1, "alice", "wrong")
    assert status == 401


def test_the_user_sees_their_use_of_the_quota(tmp_path):
    daemon = ApiDaemon(tmp_path)
    with daemon.config.open("a") as config:
        config.write("[sync]\nquota_mb = 2\n")   # the one per-user quota, [sync]'s
    with serving(daemon, "carol"):
        status, body = cloud_user(daemon, 2, "carol", "carol password")
    quota = ocs_data(body, 200)["quota"]
    assert status == 200 and quota == {"free": 2 * 1024 * 1024, "used": 0, "total": 2 * 1024 * 1024,
                                       "relative": 0.0, "quota": 2 * 1024 * 1024}


def test_ocs_speaks_xml_unless_json_is_asked_for(api):
    status, headers, body = api.exchange("GET", "/ocs/v2.php/cloud/user", headers={**basic("bob", "bob password"), **OCS})
    assert status == 200 and headers["content-type"].startswith("text/xml")
    assert body.startswith(b'<?xml version="1.0"?>')
    root = ET.fromstring(body)
    assert root.findtext("meta/statuscode") == "200" and root.findtext("data/id") == "bob"
    status, headers, body = api.exchange("GET", "/ocs/v1.php/config",
                                         headers={**basic("bob", "bob password"), "Accept": "application/json"})
    assert status == 200 and ocs_data(body, 100)["host"] == f"127.0.0.1:{api.port}"
    assert ocs_data(body, 100)["ssl"] == "false"


def test_ocs_user_needs_credentials_and_the_server_root_never_asks_for_basic(api):
    status, headers, _ = api.exchange("GET", "/ocs/v2.php/cloud/user?format=json", headers=OCS)
    assert status == 401 and headers["www-authenticate"].startswith("Basic")
    # the desktop client would switch from Login Flow v2 to its password dialog on a Basic 401 here
    status, headers, _ = api.exchange("GET", "/", headers={"User-Agent": DESKTOP_UA})
    assert status == 303 and "www-authenticate" not in headers


def test_login_flow_v1_ends_at_the_nc_address_the_android_app_intercepts(api):
    status, headers, _ = api.exchange("GET", "/index.php/login/flow", headers={**OCS, "User-Agent": ANDROID_UA})
    assert status == 303 and headers["location"] == "/login?next=/index.php/login/flow"
    cookie, csrf = logged_in(api)
    status, _, page = api.exchange("GET", "/index.php/login/flow", headers={**cookie, "User-Agent": ANDROID_UA})
    assert status == 200 and b'content="Nextcloud Android 33.0.1"' in page and b'content="v1"' in page
    status, _, body = api.exchange("POST", "/index.php/login/flow", json.dumps({"approve": True}),
                                   headers={**cookie, "X-CSRF-Token": csrf, "Content-Type": "application/json",
                                            "User-Agent": ANDROID_UA})
    assert status == 200, body
    target = json.loads(body)["redirect"]
    # AuthenticatorActivity.parseLoginDataUrl: split on &, strip the prefixes, URLDecoder.decode each value
    assert target.startswith("nc://login/")
    parts = dict(part.split(":", 1) for part in target[len("nc://login/"):].split("&"))
    assert set(parts) == {"server", "user", "password"}
    assert parts["server"] == f"http://127.0.0.1:{api.port}"
    user, password = unquote_plus(parts["user"]), unquote_plus(parts["password"])
    assert user == "alice"
    assert cloud_user(api, 2, user, password)[0] == 200
    # without the CSRF token the cookie approves nothing
    status, _, _ = api.exchange("POST", "/index.php/login/flow", json.dumps({"approve": True}),
                                headers={**cookie, "Content-Type": "application/json"})
    assert status == 403


def test_a_denied_flow_never_hands_out_a_password(api):
    token, endpoint, login_path = start_flow(api, ANDROID_UA)
    assert decide(api, login_path, False) == (200, {"approved": False, "device": "Nextcloud Android 33.0.1"})
    assert poll(api, endpoint, token) == (404, b"[]")
    assert decide(api, login_path, True)[0] == 404    # nothing left to approve


def test_an_expired_flow_cannot_be_approved_or_claimed(api):
    token, endpoint, login_path = start_flow(api, ANDROID_UA)
    assert decide(api, login_path, True)[0] == 200
    with api.db() as db:   # 20 minutes pass
        db.execute("UPDATE login_flows SET created_at = created_at - ?", [FLOW_LIFETIME + 1])
    assert poll(api, endpoint, token) == (404, b"[]")
    other_token, _, other_path = start_flow(api, IOS_UA)
    with api.db() as db:
        db.execute("UPDATE login_flows SET created_at = created_at - ?", [FLOW_LIFETIME + 1])
    assert decide(api, other_path, True)[0] == 404
    start_flow(api, IOS_UA)   # starting a flow sweeps the expired ones
    with api.db() as db:
        assert db.execute("SELECT count(*) FROM login_flows WHERE created_at < ?",
                          [time.time() - FLOW_LIFETIME]).fetchone()[0] == 0


def test_the_flow_tokens_are_stored_hashed(api):
    token, _, login_path = start_flow(api, ANDROID_UA)
    login_token = login_path.rsplit("/", 1)[1]
    with api.db() as db:
        stored = " ".join(map(str, db.execute("SELECT * FROM login_flows").fetchall()))
    assert token not in stored and login_token not in stored


def test_the_app_password_is_listed_by_hearth_token_and_revoking_it_locks_the_app_out(api):
    token, endpoint, login_path = start_flow(api, DESKTOP_UA)
    assert decide(api, login_path, True, user="bob")[0] == 200
    credentials = json.loads(poll(api, endpoint, token)[1])
    assert cloud_user(api, 1, "bob", credentials["appPassword"])[0] == 200

    def hearth(*args: str) -> str:
        result = subprocess.run([sys.executable, "-m", "services.cli", "--config", str(api.config), *args],
                                capture_output=True, text=True, env=api.env, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout

    listed = [line for line in hearth("token", "list", "bob").splitlines() if "Nextcloud desktop" in line]
    assert len(listed) == 1 and "Nextcloud desktop 3.7.3 (debian-6.1.0)" in listed[0]
    hearth("token", "revoke", "bob", listed[0].split()[0])
    assert cloud_user(api, 1, "bob", credentials["appPassword"])[0] == 401


@pytest.mark.parametrize("agent, label", [
    (DESKTOP_UA, "Nextcloud desktop 3.7.3 (debian-6.1.0)"),
    (ANDROID_UA, "Nextcloud Android 33.0.1"),
    (IOS_UA, "Nextcloud iOS 6.1.4"),
    ("Mozilla/5.0 (Linux) mirall/3.7.3git (nextcloudcmd, debian-6.1.0 ClientArchitecture: x86_64 "
     "OsArchitecture: x86_64)", "nextcloudcmd 3.7.3 (debian-6.1.0)"),
    ("Mozilla/5.0 (Android) Nextcloud-android", "Mozilla/5.0 (Android) Nextcloud-android"),
    ("curl/8.5.0\x00\x1b[31m", "curl/8.5.0[31m"),
    ("", "unknown device"),
    ("x" * 500, "x" * 100),
])
def test_device_labels_from_user_agents(agent, label):
    assert device_label(agent) == label


def test_the_apps_own_avatar_is_a_png_and_anyone_elses_is_not_found(api):
    status, headers, body = api.exchange("GET", "/index.php/avatar/alice/64", headers=basic("alice", "alice password"))
    assert status == 200 and headers["content-type"] == "image/png" and body.startswith(b"\x89PNG\r\n\x1a\n")
    assert body[16:24] == (64).to_bytes(4, "big") * 2          # IHDR: 64 × 64
    status, _, again = api.exchange("GET", "/index.php/avatar/alice/64",
                                    headers={**basic("alice", "alice password"), "If-None-Match": headers["etag"]})
    assert (status, again) == (304, b"")
    assert api.exchange("GET", "/index.php/avatar/bob/64", headers=basic("alice", "alice password"))[0] == 404
    assert api.exchange("GET", "/index.php/avatar/alice/huge", headers=basic("alice", "alice password"))[0] == 400
    assert api.exchange("GET", "/index.php/avatar/alice/64")[0] == 401


def test_logging_out_of_the_app_revokes_its_app_password(api):
    token, endpoint, login_path = start_flow(api, IOS_UA)
    assert decide(api, login_path, True)[0] == 200
    password = json.loads(poll(api, endpoint, token)[1])["appPassword"]
    status, _, body = api.exchange("DELETE", "/ocs/v2.php/core/apppassword?format=json",
                                   headers={**basic("alice", password), **OCS})
    assert status == 200 and ocs_data(body, 200) == []
    assert cloud_user(api, 2, "alice", password)[0] == 401
    # the account password is not an app password: nothing to revoke, and it keeps working
    status, _, _ = api.exchange("DELETE", "/ocs/v2.php/core/apppassword", headers={**basic("alice", "alice password"), **OCS})
    assert status == 403 and cloud_user(api, 2, "alice", "alice password")[0] == 200


def test_the_ios_app_finds_the_apps_hearth_lacks_empty(api):
    for path in ("/ocs/v2.php/apps/files/api/v1/directEditing", "/ocs/v2.php/apps/dashboard/api/v1/widgets",
                 "/ocs/v2.php/core/navigation/apps"):
        status, _, body = api.exchange("GET", path + "?format=json", headers={**basic("alice", "alice password"), **OCS})
        assert status == 200, (path, body)
        assert not any(ocs_data(body, 200).values()) if path.endswith("directEditing") else ocs_data(body, 200) == []
    # registering for push would make it wait for pushes that never come
    status, _, _ = api.exchange("POST", "/ocs/v2.php/apps/notifications/api/v2/push", "pushTokenHash=x",
                                headers={**basic("alice", "alice password"), **OCS})
    assert status in (404, 405)


def test_an_app_trades_the_account_password_for_an_app_password(api):
    status, _, body = api.exchange("GET", "/ocs/v2.php/core/getapppassword",
                                   headers={**basic("bob", "bob password"), **OCS, "User-Agent": IOS_UA})
    assert status == 200, body
    password = ET.fromstring(body).findtext("data/apppassword")   # NextcloudKit reads the XML
    assert cloud_user(api, 2, "bob", password)[0] == 200
    status, _, _ = api.exchange("GET", "/ocs/v2.php/core/getapppassword",
                                headers={**basic("bob", password), **OCS, "User-Agent": IOS_UA})
    assert status == 403
