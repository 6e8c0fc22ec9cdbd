"""The API daemon as users meet it: a real process on a real socket, real HTTP.

A few in-process tests cover what a black box cannot show (argon2 runs once for
parallel identical logins, the cache forgets a changed password) and the
failure limiter's arithmetic with a fake clock.
"""
from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from openapi_spec_validator import validate

from services.core import accounts
from services.core.config import load_config
from services.core.db import Database, db_path, migrate, open_db, write
from services.core.ratelimit import FailureLimiter, client_key
from services.core.schema import MIGRATION_SETS
from tests.installation import free_port

ADMIN, ADMIN_PASSWORD = "admin", "admin password"


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path):
        super().__init__("localhost", timeout=2)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(2)
        self.sock.connect(str(self.path))


class Daemon:
    """`python -m services.api` in a temporary home, with an admin created by the CLI."""

    def __init__(self, home: Path, listen: str | None = None, auth: str = ""):
        self.home = home
        self.listen = listen or f"127.0.0.1:{free_port()}"
        self.config = home / "hearth.toml"
        self.config.write_text(f'data_dir = "var"\n[api]\nlisten = "{self.listen}"\n'
                               + (f"[auth]\n{auth}\n" if auth else ""))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        self.process: subprocess.Popen | None = None

    @property
    def socket_path(self) -> Path | None:
        return self.home / "var" / self.listen[5:] if self.listen.startswith("unix:") else None

    @property
    def url(self) -> str:
        return "http://localhost" if self.socket_path else f"http://{self.listen}"

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
        result = subprocess.run([sys.executable, "-m", "services.cli", "--config", str(self.config), *args],
                                input=stdin, capture_output=True, text=True, env=self.env, timeout=60)
        assert result.returncode == 0, result.stderr
        return result

    def add_user(self, name: str, password: str, *, admin: bool = False) -> None:
        self.cli("user", "add", name, "--password-stdin", *(["--admin"] if admin else []), stdin=password + "\n")

    def start(self) -> "Daemon":
        self.stderr = open(self.home / "api.stderr", "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "services.api", "--config", str(self.config)],
                                        cwd=self.home, env=self.env, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"daemon exited {self.process.returncode}: {self.log()}")
            if self._healthy():
                return self
            time.sleep(0.05)
        raise AssertionError(f"daemon not healthy in time: {self.log()}")

    def _healthy(self) -> bool:
        if self.socket_path:
            connection = UnixHTTPConnection(self.socket_path)
        else:
            host, port = self.listen.rsplit(":", 1)
            connection = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False
        finally:
            connection.close()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=15)
        self.stderr.close()
        return code

    def log(self) -> str:
        return (self.home / "api.stderr").read_text(errors="replace")

    def session(self, headers: dict | None = None, *, local_addr: str | None = None) -> aiohttp.ClientSession:
        if self.socket_path:
            connector = aiohttp.UnixConnector(path=str(self.socket_path))
        else:
            connector = aiohttp.TCPConnector(local_addr=(local_addr, 0) if local_addr else None)
        return aiohttp.ClientSession(self.url, connector=connector, headers=headers)


def basic(user: str, password: str) -> dict[str, str]:
    """Authorization header for HTTP Basic."""
    return {"Authorization": aiohttp.encode_basic_auth(user, password)}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    # A generous failure limit: the tests here fail logins on purpose.
    d = Daemon(tmp_path_factory.mktemp("api"), auth="max_failures = 1000")
    d.add_user(ADMIN, ADMIN_PASSWORD, admin=True)
    d.start()
    yield d
    assert d.stop() == 0, d.log()


async def create_user(daemon: Daemon, name: str, password: str, is_admin: bool = False) -> None:
    async with daemon.session(basic(ADMIN, ADMIN_PASSWORD)) as client:
        async with client.post("/api/v1/users", json={"name": name, "password": password,
                                                      "is_admin": is_admin}) as response:
            assert response.status == 201, await response.text()


async def new_app_password(daemon: Daemon, user: str, password: str, label: str = "phone") -> dict:
    async with daemon.session(basic(user, password)) as client:
        async with client.post("/api/v1/me/app-passwords", json={"label": label}) as response:
            assert response.status == 201, await response.text()
            return await response.json()


async def status_of(daemon: Daemon, path: str = "/api/v1/me", **session) -> int:
    async with daemon.session(**session) as client:
        async with client.get(path) as response:
            return response.status


# --- authentication ------------------------------------------------------------------

async def test_basic_with_password(daemon):
    async with daemon.session(basic(ADMIN, ADMIN_PASSWORD)) as client:
        async with client.get("/api/v1/me") as response:
            assert response.status == 200
            me = await response.json()
    assert me["name"] == ADMIN and me["is_admin"] is True and me["auth"] == "password"
    assert me["created_at"].endswith("Z")


async def test_user_names_are_case_insensitive(daemon):
    async with daemon.session(basic("ADMIN", ADMIN_PASSWORD)) as client:
        async with client.get("/api/v1/me") as response:
            assert (await response.json())["name"] == ADMIN


async def test_app_password_with_basic_and_bearer(daemon):
    await create_user(daemon, "dana", "dana password")
    created = await new_app_password(daemon, "dana", "dana password", "tablet")
    assert created["password"].startswith("hearth-") and created["label"] == "tablet"

    async with daemon.session(basic("dana", created["password"])) as client:
        async with client.get("/api/v1/me") as response:
            assert response.status == 200
            assert (await response.json())["auth"] == "app-password"
        async with client.get("/api/v1/me/app-passwords") as response:
            listed = await response.json()
    assert [(p["id"], p["label"]) for p in listed] == [(created["id"], "tablet")]
    assert listed[0]["last_used_at"] is not None and "password" not in listed[0]

    async with daemon.session(headers={"Authorization": f"Bearer {created['password']}"}) as client:
        async with client.get("/api/v1/me") as response:
            assert response.status == 200
            me = await response.json()
    assert me["name"] == "dana" and me["auth"] == "bearer"

    # An app password only works with its owner's name.
    assert await status_of(daemon, headers=basic(ADMIN, created["password"])) == 401


async def test_missing_or_wrong_credentials_are_401(daemon):
    for headers in (None, basic(ADMIN, "Tr0ub4dor&3x"), basic("nobody", "whatever1"), basic("bad name!", "x")):
        async with daemon.session(headers) as client:
            async with client.get("/api/v1/me") as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"] == 'Basic realm="hearth", charset="UTF-8"'
                assert (await response.json())["error"] == "unauthorized"
    for header in ("Bearer hearth-not-a-token", "Basic !!!", "Digest x"):
        assert await status_of(daemon, headers={"Authorization": header}) == 401
    assert "failed login from 127.0.0.1 for user 'admin'" in daemon.log()
    assert "Tr0ub4dor" not in daemon.log()


async def test_revoked_app_password_is_401(daemon):
    created = await new_app_password(daemon, ADMIN, ADMIN_PASSWORD, "old laptop")
    token = basic(ADMIN, created["password"])
    assert await status_of(daemon, headers=token) == 200
    async with daemon.session(token) as client:  # an app password may revoke itself
        async with client.delete(f"/api/v1/me/app-passwords/{created['id']}") as response:
            assert response.status == 204
    assert await status_of(daemon, headers=token) == 401
    async with daemon.session(basic(ADMIN, ADMIN_PASSWORD)) as client:
        async with client.delete(f"/api/v1/me/app-passwords/{created['id']}") as response:
            assert response.status == 404


async def test_deleted_user_is_401(daemon):
    await create_user(daemon, "carol", "carol password")
    created = await new_app_password(daemon, "carol", "carol password")
    assert await status_of(daemon, headers=basic("carol", "carol password")) == 200  # now verified and cached
    async with daemon.session(basic(ADMIN, ADMIN_PASSWORD)) as client:
        async with client.delete("/api/v1/users/carol") as response:
            assert response.status == 204
        async with client.delete("/api/v1/users/carol") as response:
            assert response.status == 404
    assert await status_of(daemon, headers=basic("carol", "carol password")) == 401
    assert await status_of(daemon, headers=basic("carol", created["password"])) == 401


async def test_password_change_from_the_cli_takes_effect_at_once(daemon):
    await create_user(daemon, "erin", "erin password")
    assert await status_of(daemon, headers=basic("erin", "erin password")) == 200
    daemon.cli("user", "passwd", "erin", "--password-stdin", stdin="erin's new password\n")
    assert await status_of(daemon, headers=basic("erin", "erin password")) == 401
    assert await status_of(daemon, headers=basic("erin", "erin's new password")) == 200


# --- administration ---------------------------------------------------------------------

async def test_non_admin_is_forbidden(daemon):
    await create_user(daemon, "frank", "frank password")
    async with daemon.session(basic("frank", "frank password")) as client:
        for method, path in (("GET", "/api/v1/users"), ("POST", "/api/v1/users"), ("DELETE", "/api/v1/users/admin")):
            async with client.request(method, path, json={"name": "x", "password": "12345678"}) as response:
                assert response.status == 403, (method, path)
                assert (await response.json())["error"] == "forbidden"
    assert await status_of(daemon, "/api/v1/users", headers=basic("frank", "wrong password")) == 401


async def test_admin_manages_users(daemon):
    await create_user(daemon, "Gina", "gina password", is_admin=True)
    async with daemon.session(basic(ADMIN, ADMIN_PASSWORD)) as client:
        async with client.get("/api/v1/users") as response:
            users = {u["name"]: u for u in await response.json()}
        assert users["gina"]["is_admin"] is True and users["gina"]["app_passwords"] == 0
        async with client.post("/api/v1/users", json={"name": "GINA", "password": "12345678"}) as response:
            assert response.status == 409 and "already exists" in (await response.json())["reason"]
        async with client.delete("/api/v1/users/admin") as response:
            assert response.status == 409
            assert "your own account" in (await response.json())["reason"]
    assert await status_of(daemon, headers=basic(ADMIN, ADMIN_PASSWORD)) == 200
    # Another admin may delete this one's peers, but not itself either.
    async with daemon.session(basic("gina", "gina password")) as client:
        async with client.delete("/api/v1/users/Gina") as response:
            assert response.status == 409


async def test_addresses_through_the_api_one_owner_each(daemon):
    await create_user(daemon, "ivy", "ivy password")
    await create_user(daemon, "jon", "jon password")
    async with daemon.session(basic("ivy", "ivy password")) as client:
        async with client.post("/api/v1/me/addresses", json={"address": "mailto:Ivy%40Example.org"}) as response:
            assert response.status == 201
            assert await response.json() == {"address": "ivy@example.org", "default": False}
        async with client.post("/api/v1/me/addresses", json={"address": "ivy@example.org"}) as response:
            assert response.status == 200  # hers already
        async with client.get("/api/v1/me/addresses") as response:
            assert await response.json() == [{"address": "ivy@example.org", "default": False},
                                             {"address": "ivy@localhost", "default": True}]
        async with client.delete("/api/v1/me/addresses/ivy@localhost") as response:
            assert response.status == 400 and "cannot be removed" in (await response.json())["reason"]
        async with client.get("/api/v1/users/jon/addresses") as response:
            assert response.status == 403  # another user's: admins only
    async with daemon.session(basic("jon", "jon password")) as client:
        async with client.post("/api/v1/me/addresses", json={"address": "IVY@example.org"}) as response:
            assert response.status == 409
            assert (await response.json())["reason"] == \
                "ivy@example.org is already an address of ivy; an address belongs to one user only"
    async with daemon.session(basic(ADMIN, ADMIN_PASSWORD)) as client:
        async with client.post("/api/v1/users/jon/addresses", json={"address": "jon@example.org"}) as response:
            assert response.status == 201
        async with client.delete("/api/v1/users/ivy/addresses/IVY@example.org") as response:
            assert response.status == 204
        async with client.get("/api/v1/users/ivy/addresses") as response:
            assert [a["address"] for a in await response.json()] == ["ivy@localhost"]
        async with client.get("/api/v1/users/nobody/addresses") as response:
            assert response.status == 404
        # A new user with addresses: one taken refuses the whole user.
        new = {"name": "kim", "password": "kim password", "emails": ["kim@example.org", "JON@example.org"]}
        async with client.post("/api/v1/users", json=new) as response:
            assert response.status == 409 and "address of jon" in (await response.json())["reason"]
        async with client.post("/api/v1/users", json={**new, "emails": ["kim@example.org"]}) as response:
            assert response.status == 201
        async with client.get("/api/v1/users/kim/addresses") as response:
            assert [a["address"] for a in await response.json()] == ["kim@example.org", "kim@localhost"]


@pytest.mark.parametrize("method, path, body, field", [
    ("POST", "/api/v1/users", {"name": "hal"}, "password"),
    ("POST", "/api/v1/users", {"name": "hal", "password": "short"}, "password"),
    ("POST", "/api/v1/users", {"name": "Hal 9000", "password": "12345678"}, "user name"),
    ("POST", "/api/v1/users", {"name": "hal", "password": "12345678", "admin": True}, "admin"),
    ("POST", "/api/v1/users", {"name": "hal", "password": "12345678", "is_admin": "maybe"}, "is_admin"),
    ("POST", "/api/v1/users", b"{not json", "JSON"),
    ("POST", "/api/v1/me/app-passwords", {}, "label"),
    ("POST", "/api/v1/me/app-passwords", {"label": "   "}, "label"),
    ("DELETE", "/api/v1/me/app-passwords/abc", None, "id"),
    ("POST", "/api/v1/me/addresses", {"address": "no at sign"}, "email address"),
])
async def test_validation_errors_name_the_field(daemon, method, path, body, field):
    async with daemon.session(basic(ADMIN, ADMIN_PASSWORD)) as client:
        kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with client.request(method, path, **kwargs) as response:
            assert response.status == 400
            error = await response.json()
    assert error["error"] == "bad-request" and field in error["reason"]
    async with daemon.session(basic(ADMIN, ADMIN_PASSWORD)) as client:
        async with client.get("/api/v1/users") as response:
            assert "hal" not in {u["name"] for u in await response.json()}


# --- the OpenAPI document ----------------------------------------------------------------

async def test_openapi_document_validates_and_covers_every_route(daemon, tmp_path):
    async with daemon.session() as client:  # no credentials needed
        async with client.get("/api/openapi.json") as response:
            assert response.status == 200
            spec = await response.json()
    validate(spec)
    assert spec["openapi"].startswith("3.1")
    assert set(spec["components"]["securitySchemes"]) == {"basic", "bearer"}
    assert set(spec["components"]["schemas"]["Error"]["properties"]) == {"error", "reason"}

    from services.api.app import create_app
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    app = create_app(load_config(tmp_path / "hearth.toml"))
    served = {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith("/api/")
              and route.method != "HEAD"}
    documented = {(method, path) for path, operations in spec["paths"].items() for method in operations}
    assert served == documented
    assert {path for _, path in served} >= {"/api/v1/me", "/api/v1/me/app-passwords",
                                            "/api/v1/me/app-passwords/{id}", "/api/v1/users",
                                            "/api/v1/users/{name}", "/api/openapi.json"}

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = set(operation["responses"])
            if path.startswith("/api/v1/"):
                assert {"401", "429"} <= responses, (method, path)
            if path.startswith("/api/v1/users"):
                assert "403" in responses, (method, path)
    assert spec["paths"]["/api/openapi.json"]["get"]["security"] == []
    assert {"404", "409"} <= set(spec["paths"]["/api/v1/users/{name}"]["delete"]["responses"])


# --- failed-login limit ------------------------------------------------------------------

async def test_failed_logins_are_rate_limited_per_address(tmp_path):
    daemon = Daemon(tmp_path)  # production limits: 10 failures in 300 s
    daemon.add_user("ivy", "ivy password")
    daemon.start()
    try:
        for _ in range(10):
            assert await status_of(daemon, headers=basic("ivy", "guess")) == 401
        async with daemon.session(basic("ivy", "ivy password")) as client:
            async with client.get("/api/v1/me") as response:
                assert response.status == 429
                assert 1 <= int(response.headers["Retry-After"]) <= 300
                assert (await response.json())["error"] == "too-many-requests"
        assert await status_of(daemon, "/api/v1/users", headers=basic("ivy", "ivy password")) == 429
        assert await status_of(daemon, headers=basic("ivy", "ivy password"), local_addr="127.0.0.2") == 200
        assert await status_of(daemon, "/healthz") == 200
    finally:
        assert daemon.stop() == 0


async def test_address_recovers_after_the_window_and_success_does_not_reset(tmp_path):
    # An hour's window, so a busy machine's slow logins all fall inside it; the hour then passes by moving
    # the recorded failures back in the real database, as the daemon reads them for every login.
    window = 3600
    daemon = Daemon(tmp_path, auth=f"max_failures = 3\nfailure_window = {window}")
    daemon.add_user("jo", "jo password")
    daemon.start()
    try:
        good, bad = basic("jo", "jo password"), basic("jo", "guess")
        assert [await status_of(daemon, headers=bad) for _ in range(2)] == [401, 401]
        assert await status_of(daemon, headers=good) == 200  # must not wipe the two failures
        assert await status_of(daemon, headers=bad) == 401
        async with daemon.session(good) as client:
            async with client.get("/api/v1/me") as response:
                assert response.status == 429
                retry_after = int(response.headers["Retry-After"])
        assert window - 120 <= retry_after <= window
        with sqlite3.connect(tmp_path / "var" / "db" / "hearth.sqlite3") as db:
            db.execute("UPDATE auth_failures SET at = at - ?", [window - 60])  # a minute of the window left
        assert await status_of(daemon, headers=good) == 429
        with sqlite3.connect(tmp_path / "var" / "db" / "hearth.sqlite3") as db:
            db.execute("UPDATE auth_failures SET at = at - 60")  # the window has passed
        assert await status_of(daemon, headers=good) == 200
    finally:
        assert daemon.stop() == 0


async def test_failure_limiter_arithmetic(tmp_path):
    path = tmp_path / "hearth.sqlite3"
    migrate(path, MIGRATION_SETS)
    database = Database(path)
    now = [1000.0]
    limiter = FailureLimiter(database, "login", 3, 60, clock=lambda: now[0])
    try:
        for step in range(3):
            assert await limiter.retry_after("10.0.0.1") is None
            await limiter.record_failure("10.0.0.1")
            now[0] += 10
        assert await limiter.retry_after("10.0.0.1") == pytest.approx(30)  # oldest (t=1000) ages out at 1060
        assert await limiter.retry_after("10.0.0.2") is None
        assert await FailureLimiter(database, "link-password", 3, 60, clock=lambda: now[0]).retry_after(
            "10.0.0.1") is None  # each kind counts on its own
        now[0] = 1060.5
        assert await limiter.retry_after("10.0.0.1") is None
        await limiter.record_failure("10.0.0.1")
        assert await limiter.retry_after("10.0.0.1") == pytest.approx(9.5)  # now the t=1010 failure is oldest

        for i in range(500):
            await limiter.record_failure(f"192.0.2.{i % 250}" if i < 250 else f"198.51.100.{i % 250}")
        count = await database.read(lambda db: db.execute("SELECT count(*) FROM auth_failures").fetchone()[0])
        assert count == 503  # at most max_failures rows per address are kept
        now[0] += 1000
        await limiter.record_failure("203.0.113.1")
        count = await database.read(lambda db: db.execute("SELECT count(*) FROM auth_failures").fetchone()[0])
        assert count == 1 and await limiter.retry_after("192.0.2.1") is None  # expired rows are dropped
    finally:
        database.close()


def test_ipv6_clients_are_counted_per_64():
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert client_key("192.0.2.7") == "192.0.2.7"


# --- the process: signals, sockets, bad config ---------------------------------------------

async def test_unix_socket_daemon_stops_cleanly_and_restarts(tmp_path):
    daemon = Daemon(tmp_path, listen="unix:run/api.sock")
    daemon.add_user("kim", "kim password")
    daemon.start()
    assert daemon.socket_path.is_socket()
    assert await status_of(daemon, headers=basic("kim", "kim password")) == 200
    assert daemon.stop() == 0, daemon.log()
    assert not daemon.socket_path.exists()

    daemon.start()  # a killed daemon leaves its socket behind: the next start reuses it
    assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
    assert daemon.socket_path.is_socket()
    daemon.start()
    assert await status_of(daemon, headers=basic("kim", "kim password")) == 200
    assert daemon.stop() == 0
    assert "unhandled" not in daemon.log()


def test_bad_config_exits_2_with_one_line(tmp_path):
    config = tmp_path / "hearth.toml"
    config.write_text('[api]\nlisten = "127.0.0.1:1"\nbogus = 1\n')
    result = subprocess.run([sys.executable, "-m", "services.api", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(config) in lines[0] and "bogus" in lines[0]

    config.write_text('[api]\nlisten = "nowhere"\n')
    result = subprocess.run([sys.executable, "-m", "services.api", "--config", str(config)],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "listen" in result.stderr and len(result.stderr.strip().splitlines()) == 1


# --- in process: the verification cache ------------------------------------------------------

@pytest.fixture
async def local_api(tmp_path, aiohttp_client):
    from services.api.app import create_app
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    config = load_config(tmp_path / "hearth.toml")
    path = db_path(config.data_dir)
    migrate(path, MIGRATION_SETS)
    db = open_db(path)
    write(db, lambda db: accounts.create_user(db, "lee", accounts.hash_password("lee password")))
    client = await aiohttp_client(create_app(config))
    yield client, db
    db.close()


async def test_parallel_logins_share_one_argon2_check_and_the_cache_follows_the_hash(local_api, monkeypatch):
    client, db = local_api
    calls = []
    real_verify = accounts.verify_password

    def counting_verify(stored, password):
        calls.append(password)
        return real_verify(stored, password)

    monkeypatch.setattr(accounts, "verify_password", counting_verify)
    auth = basic("lee", "lee password")

    async def me() -> int:
        async with client.get("/api/v1/me", headers=auth) as response:
            return response.status

    assert await asyncio.gather(*(me() for _ in range(8))) == [200] * 8
    assert len(calls) == 1
    assert [await me() for _ in range(5)] == [200] * 5
    assert len(calls) == 1  # remembered

    new_hash = accounts.hash_password("lee's new password")
    write(db, lambda db: accounts.set_password(db, "lee", new_hash))
    assert await me() == 401  # the stored hash changed: the cached success no longer applies
    assert len(calls) == 2
