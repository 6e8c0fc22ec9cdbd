"""The web UI's session cookie on real daemons: login, logout, expiry, cookie flags and CSRF.

The API daemon and the DAV daemon run as their own processes on loopback ports
over one data directory, so a cookie issued by one is checked by the other from
the shared database, as behind the front end.
"""
from __future__ import annotations

import base64
import html
import json
import re
import sqlite3
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote, unquote, urljoin, urlsplit

import pytest

from services.core import sessions
from tests.daemons import PASSWORDS, LoopbackDaemon, serving
from tests.dav_harness import DavDaemon


class ApiDaemon(LoopbackDaemon):
    module, section = "services.api", "api"

    def healthy(self) -> bool:
        return self.exchange("GET", "/healthz")[0] == 200

    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.home / "var" / "db" / "hearth.sqlite3", timeout=10, isolation_level=None)

    def login(self, user: str, password: str | None = None, headers: dict | None = None):
        return self.exchange("POST", "/api/v1/session", json.dumps({"user": user, "password": password or PASSWORDS[user]}),
                             headers={"Content-Type": "application/json", **(headers or {})})


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    daemon = ApiDaemon(tmp_path_factory.mktemp("web-session"))
    daemon.config.write_text(daemon.config.read_text() + "[auth]\nmax_failures = 3\n")
    result = subprocess.run([sys.executable, "-m", "services.cli", "--config", str(daemon.config), "user", "add",
                             "root", "--admin", "--password-stdin"], input="root password\n", capture_output=True,
                            text=True, env=daemon.env, timeout=60)
    assert result.returncode == 0, result.stderr
    with serving(daemon, "alice", "bob") as running:
        yield running
    assert "unhandled error" not in daemon.log()


@pytest.fixture(scope="module")
def dav(api, tmp_path_factory):
    """The DAV daemon on the API daemon's data directory."""
    daemon = DavDaemon(tmp_path_factory.mktemp("web-session-dav"))
    daemon.on_data_of(api.home)
    with serving(daemon) as running:
        yield running


def session_of(headers: dict) -> tuple[str, SimpleCookie]:
    cookie = SimpleCookie()
    cookie.load(headers["set-cookie"])
    return cookie[sessions.COOKIE_NAME].value, cookie


def logged_in(api: ApiDaemon, user: str = "alice") -> tuple[dict, str]:
    """(headers that carry the session cookie, the CSRF token)"""
    status, headers, body = api.login(user)
    assert status == 201, body
    token, _ = session_of(headers)
    return {"Cookie": f"{sessions.COOKIE_NAME}={token}"}, json.loads(body)["csrf_token"]


def test_login_sets_a_strict_http_only_cookie_and_returns_the_csrf_token(api):
    status, headers, body = api.login("alice")
    assert status == 201, body
    token, cookie = session_of(headers)
    morsel = cookie[sessions.COOKIE_NAME]
    assert morsel["httponly"] is True and morsel["samesite"] == "Strict" and morsel["path"] == "/"
    assert not morsel["secure"]                      # plain http: a Secure cookie would never come back
    assert int(morsel["max-age"]) == int(sessions.ABSOLUTE_TIMEOUT)
    session = json.loads(body)
    assert session["user"] == "alice" and session["is_admin"] is False and len(session["csrf_token"]) >= 32
    with api.db() as db:   # only the hash is stored
        stored = [row[0] for row in db.execute("SELECT token_hash FROM sessions")]
    assert token not in stored and sessions.token_hash(token) in stored
    status, _, body = api.exchange("GET", "/api/v1/me", headers={"Cookie": f"{sessions.COOKIE_NAME}={token}"})
    assert status == 200 and json.loads(body)["auth"] == "session"


def test_the_cookie_is_secure_when_the_front_end_saw_https(api):
    status, headers, _ = api.login("alice", headers={"X-Forwarded-Proto": "https"})
    assert status == 201
    assert session_of(headers)[1][sessions.COOKIE_NAME]["secure"] is True


def test_an_app_password_logs_in_too(api):
    status, _, body = api.exchange("POST", "/api/v1/me/app-passwords", json.dumps({"label": "laptop"}), user="alice",
                                   headers={"Content-Type": "application/json"})
    assert status == 201
    status, headers, _ = api.login("alice", json.loads(body)["password"])
    assert status == 201 and sessions.COOKIE_NAME in headers["set-cookie"]


def test_unsafe_requests_with_the_cookie_need_the_csrf_token(api):
    cookie, csrf = logged_in(api)
    create = {"Content-Type": "application/json", **cookie}
    count = "SELECT count(*) FROM app_passwords WHERE label = 'csrf'"
    for headers in (create, {**create, sessions.CSRF_HEADER: "not-the-token"}, {**create, sessions.CSRF_HEADER: ""}):
        status, _, body = api.exchange("POST", "/api/v1/me/app-passwords", json.dumps({"label": "csrf"}),
                                       headers=headers)
        assert status == 403 and sessions.CSRF_HEADER in json.loads(body)["reason"]
    with api.db() as db:
        assert db.execute(count).fetchone()[0] == 0   # refused requests changed nothing
    status, _, _ = api.exchange("POST", "/api/v1/me/app-passwords", json.dumps({"label": "csrf"}),
                                headers={**create, sessions.CSRF_HEADER: csrf})
    assert status == 201
    with api.db() as db:
        assert db.execute(count).fetchone()[0] == 1
    # Safe methods need no token; Basic needs none either, cookie or not.
    assert api.exchange("GET", "/api/v1/me/app-passwords", headers=cookie)[0] == 200
    status, _, _ = api.exchange("POST", "/api/v1/me/app-passwords", json.dumps({"label": "basic"}), user="alice",
                                headers={"Content-Type": "application/json"})
    assert status == 201


def test_logout_ends_the_session_everywhere(api, dav):
    cookie, csrf = logged_in(api)
    assert api.exchange("DELETE", "/api/v1/session", headers=cookie)[0] == 403   # logout is CSRF-protected too
    status, headers, _ = api.exchange("DELETE", "/api/v1/session", headers={**cookie, sessions.CSRF_HEADER: csrf})
    assert status == 204 and "max-age=0" in headers["set-cookie"].lower()
    status, headers, _ = api.exchange("GET", "/api/v1/me", headers=cookie)
    assert status == 401 and not headers["www-authenticate"].startswith("Basic")  # no browser login dialog
    assert dav.request("PROPFIND", "/dav/calendars/alice/", headers={**cookie, "Depth": "0"})[0] == 401


def test_the_session_works_in_the_dav_daemon_with_csrf_for_propfind(api, dav):
    cookie, csrf = logged_in(api)
    assert dav.request("PROPFIND", "/dav/calendars/alice/", headers={**cookie, "Depth": "0"})[0] == 403
    status, _, body = dav.request("PROPFIND", "/dav/calendars/alice/",
                                  headers={**cookie, "Depth": "0", sessions.CSRF_HEADER: csrf})
    assert status == 207, body
    assert dav.request("GET", "/dav/api/v1/shares", headers=cookie)[0] == 200
    assert dav.request("PROPFIND", "/dav/calendars/bob/", headers={**cookie, "Depth": "0",
                                                                  sessions.CSRF_HEADER: csrf})[0] in (403, 404)


def test_idle_and_absolute_expiry(api):
    idle, _ = logged_in(api)
    old, _ = logged_in(api)
    assert api.exchange("GET", "/api/v1/me", headers=idle)[0] == 200
    now = time.time()
    with api.db() as db:
        db.execute("UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?",
                   [now - sessions.IDLE_TIMEOUT - 1, sessions.token_hash(idle["Cookie"].split("=", 1)[1])])
        db.execute("UPDATE sessions SET expires_at = ? WHERE token_hash = ?",
                   [now - 1, sessions.token_hash(old["Cookie"].split("=", 1)[1])])
    assert api.exchange("GET", "/api/v1/me", headers=idle)[0] == 401
    assert api.exchange("GET", "/api/v1/me", headers=old)[0] == 401
    logged_in(api)  # a new login sweeps sessions nobody can use any more
    with api.db() as db:
        assert db.execute("SELECT count(*) FROM sessions WHERE expires_at <= ? OR last_seen_at <= ?",
                          [now, now - sessions.IDLE_TIMEOUT]).fetchone()[0] == 0


def test_activity_keeps_a_session_alive(api):
    cookie, _ = logged_in(api)
    hashed = sessions.token_hash(cookie["Cookie"].split("=", 1)[1])
    with api.db() as db:
        db.execute("UPDATE sessions SET last_seen_at = last_seen_at - 3600 WHERE token_hash = ?", [hashed])
        before = db.execute("SELECT last_seen_at FROM sessions WHERE token_hash = ?", [hashed]).fetchone()[0]
    assert api.exchange("GET", "/api/v1/me", headers=cookie)[0] == 200
    with api.db() as db:
        assert db.execute("SELECT last_seen_at FROM sessions WHERE token_hash = ?", [hashed]).fetchone()[0] > before + 3000


def test_deleting_a_user_ends_their_sessions(api):
    status, _, _ = api.exchange("POST", "/api/v1/users", json.dumps({"name": "dave", "password": "dave password"}),
                                headers={"Content-Type": "application/json", **basic("root", "root password")})
    assert status == 201
    cookie, _ = logged_in_as(api, "dave", "dave password")
    assert api.exchange("GET", "/api/v1/me", headers=cookie)[0] == 200
    assert api.exchange("DELETE", "/api/v1/users/dave", headers=basic("root", "root password"))[0] == 204
    assert api.exchange("GET", "/api/v1/me", headers=cookie)[0] == 401
    with api.db() as db:
        assert db.execute("SELECT count(*) FROM sessions s LEFT JOIN users u ON u.id = s.user_id "
                          "WHERE u.id IS NULL").fetchone()[0] == 0


def test_pages_need_a_session_and_admin_pages_an_admin(api):
    status, headers, _ = api.exchange("GET", "/browse?path=%2Fdocs%2F")
    location = urlsplit(headers["location"])
    assert status == 303 and location.path == "/login"
    assert parse_qs(location.query) == {"next": ["/browse?path=%2Fdocs%2F"]}  # back where it was, after login
    status, headers, body = api.exchange("GET", "/login")
    assert status == 200 and "script-src 'self'" in headers["content-security-policy"]
    cookie, csrf = logged_in(api)
    status, headers, body = api.exchange("GET", "/devices", headers=cookie)
    page = body.decode()
    assert status == 200 and f'<meta name="csrf-token" content="{csrf}">' in page
    assert headers["cache-control"] == "no-store" and 'href="/admin"' not in page
    assert api.exchange("GET", "/admin", headers=cookie)[0] == 403
    root, _ = logged_in_as(api, "root", "root password")
    status, _, body = api.exchange("GET", "/admin", headers=root)
    assert status == 200 and 'href="/admin" aria-current="page"' in body.decode()
    assert api.exchange("GET", "/", headers=cookie)[1]["location"] == "/browse"


# ?next= values that once led, or could lead, a browser off-site after logging in.
NASTY_NEXT = ("/\t/evil.example/x", "/\n/evil.example", "/\r/evil.example", "\t//evil.example", "//evil.example",
              "///evil.example", "/\\evil.example", "\\/evil.example", "/\\/evil.example", "https://evil.example/",
              "http:/evil.example", "http:evil.example", "javascript:alert(1)", "data:text/html,x",
              " //evil.example", "\x00//evil.example", "/..//evil.example", "/./\\evil.example", "/a/../\t/evil.example",
              "/%2F%2Fevil.example", "/%09/evil.example", "/%5Cevil.example", "evil.example", "",
              "/browse?path=%2Fdocs%2F#top", '/x"><script>alert(1)</script>')


def next_after_login(api: ApiDaemon, value: str) -> str:
    """The page the login form of /login?next=VALUE goes to: its <meta name="next">."""
    status, _, body = api.exchange("GET", f"/login?next={quote(value, safe='')}")
    assert status == 200
    found = re.search(r'<meta name="next" content="([^"]*)">', body.decode())
    assert found, body[:500]
    return html.unescape(found.group(1))


@pytest.mark.parametrize("value", NASTY_NEXT)
def test_login_goes_on_only_to_a_path_of_this_origin(api, value):
    target = next_after_login(api, value)
    assert target.startswith("/") and not target.startswith(("//", "/\\")), target
    assert not any(ord(ch) < 0x21 or ch == "\\" for ch in target), target  # nothing a browser drops or reads as /
    assert urlsplit(urljoin("http://hearth.test/", target)).netloc == "hearth.test"
    if value.startswith("/browse"):
        assert target == value  # a genuine page is kept, query and fragment included


def test_static_assets_are_served_and_confined(api):
    status, headers, body = api.exchange("GET", "/static/lib.js")
    assert status == 200 and "javascript" in headers["content-type"] and b"X-CSRF-Token" in body
    for path in ("/static/../pages.py", "/static/%2e%2e/pages.py", "/static/..%2fpages.py"):
        assert api.exchange("GET", path)[0] in (403, 404), path


def test_a_device_gets_a_qr_code_of_its_setup_url(api):
    cookie, csrf = logged_in(api, "alice")
    status, _, body = api.exchange("POST", "/api/v1/me/devices", json.dumps({"label": "phone"}),
                                   headers={"Content-Type": "application/json", **cookie, sessions.CSRF_HEADER: csrf,
                                            "Host": "home.example.org", "X-Forwarded-Proto": "https"})
    assert status == 201, body
    device = json.loads(body)
    assert device["server"] == "https://home.example.org"
    url = urlsplit(device["setup_url"])
    assert (url.scheme, url.hostname, url.path) == ("caldavs", "home.example.org", "/dav/")
    assert (url.username, unquote(url.password)) == ("alice", device["password"])
    assert device["qr_svg"].startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in device["qr_svg"]
    listed = json.loads(api.exchange("GET", "/api/v1/me/app-passwords", headers=cookie)[2])
    assert device["id"] in [p["id"] for p in listed] and "password" not in listed[0]


def test_admin_services_lists_what_hearth_status_lists(api):
    assert api.exchange("GET", "/api/v1/admin/services", user="alice")[0] == 403
    status, _, body = api.exchange("GET", "/api/v1/admin/services", headers=basic("root", "root password"))
    assert status == 200
    services = {s["name"]: s for s in json.loads(body)}
    assert {"api", "sync", "dav", "front"} <= set(services)
    assert all(s["state"] == "stopped" and s["up"] is False for s in services.values())  # nothing under hearth up


def basic(user: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def logged_in_as(api: ApiDaemon, user: str, password: str) -> tuple[dict, str]:
    status, headers, body = api.login(user, password)
    assert status == 201, body
    return {"Cookie": f"{sessions.COOKIE_NAME}={session_of(headers)[0]}"}, json.loads(body)["csrf_token"]


# Last: the failures it records would lock every later login out.
def test_failed_logins_are_rate_limited(api):
    for _ in range(3):
        status, headers, _ = api.login("bob", "wrong password")
        assert status == 401 and not headers["www-authenticate"].startswith("Basic")
    status, headers, body = api.login("bob")
    assert status == 429 and "retry-after" in headers, body
