"""The front end as `hearth up` runs it: the API on its Unix socket and a user's own service, one door.

Everything is configured only in hearth.toml and started by `hearth up`; the
requests go through the front end's port, the only TCP port hearth opens.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import signal
import textwrap
import time
from pathlib import Path

import caldav
import pytest

from tests.installation import ADMIN_PASSWORD, Installation, free_port, running

CONNECT_TIMEOUT = 2.0


class Hearth(Installation):
    """One installation in a temp dir: the API on its default socket, hello on TCP, the front in front."""

    def __init__(self, root: Path):
        self.front_port, self.hello_port = free_port(), free_port()
        (root / "www").mkdir()
        (root / "www" / "index.html").write_text("hello from a stranger's server\n")
        super().__init__(root, textwrap.dedent(f"""\
            data_dir = "var"
            [front]
            listen = "127.0.0.1:{self.front_port}"
            connect_timeout = {CONNECT_TIMEOUT}
            retry_after = 1
            [auth]
            max_failures = 3
            [supervisor]
            ready_timeout = 20

            [[service]]
            name = "hello"
            command = ["python3", "-m", "http.server", "{self.hello_port}", "--bind", "127.0.0.1",
                       "--directory", "{root / 'www'}"]
            listen = "127.0.0.1:{self.hello_port}"
            route = "/hello/"
            strip_prefix = true
            health = "http://127.0.0.1:{self.hello_port}/"
            """))

    def request(self, method: str, path: str, headers: dict | None = None, source: str | None = None,
                timeout: float = 10, body: bytes | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.front_port, timeout=timeout,
                                                source_address=(source, 0) if source else None)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture(scope="module")
def hearth(tmp_path_factory):
    h = Hearth(tmp_path_factory.mktemp("up"))
    with running(h) as up:
        h.up_output = up.stdout
        yield h


def test_up_starts_the_front_last_and_prints_its_url(hearth):
    out = hearth.up_output
    assert f"hearth is up: http://127.0.0.1:{hearth.front_port}/" in out
    assert out.index("api: ready") < out.index("front: ready")  # hearth_front REQUIRE hearth_api
    assert (hearth.var / "run" / "api.sock").exists()             # the API's default listen
    rows = hearth.status_rows()
    assert rows["front"][1] == "running" and rows["api"][1] == "running"


def test_the_api_on_its_unix_socket_through_the_front(hearth):
    status, headers, body = hearth.request("GET", "/api/v1/me", basic("admin", ADMIN_PASSWORD))
    assert status == 200, body
    assert json.loads(body)["name"] == "admin"
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, _, body = hearth.request("GET", "/api/openapi.json")
    assert status == 200 and json.loads(body)["openapi"].startswith("3.1")


def test_a_user_service_on_tcp_through_the_front(hearth):
    status, _, body = hearth.request("GET", "/hello/index.html")
    assert status == 200 and body == b"hello from a stranger's server\n"
    status, headers, _ = hearth.request("GET", "/hello")
    assert (status, headers["Location"]) == (308, "/hello/")


def test_healthz_aggregates_every_upstream(hearth):
    status, _, body = hearth.request("GET", "/healthz")
    report = json.loads(body)
    assert status == 200 and report["status"] == "ok"
    states = {name: entry["state"] for name, entry in report["upstreams"].items()}
    assert states == {"hello": "ok", "api": "ok", "sync": "ok", "dav": "ok",
                      "files": "not-installed"}


def test_calendars_through_the_front_door(hearth):
    """`hearth up` runs hearth_dav behind the front end: the caldav library finds its way from
    /.well-known/caldav, and what it stores comes back byte for byte."""
    client = caldav.DAVClient(url=f"http://127.0.0.1:{hearth.front_port}/.well-known/caldav",
                              username="admin", password=ADMIN_PASSWORD, require_tls=False)
    principal = client.principal()
    assert [str(c.url).rstrip("/").rsplit("/", 1)[-1] for c in principal.calendars()] == ["calendar"]
    event = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth tests//EN\r\nBEGIN:VEVENT\r\n"
             b"UID:front-door-1\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250301T100000Z\r\n"
             b"DTEND:20250301T110000Z\r\nSUMMARY:Through the front\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    status, _, _ = hearth.request("PUT", "/dav/calendars/admin/calendar/front-door-1.ics", {
        **basic("admin", ADMIN_PASSWORD), "Content-Type": "text/calendar"}, body=event)
    assert status == 201
    status, headers, body = hearth.request("GET", "/dav/calendars/admin/calendar/front-door-1.ics",
                                           basic("admin", ADMIN_PASSWORD))
    assert status == 200 and body == event and headers["ETag"].startswith('"')


def test_the_api_counts_failed_logins_per_client_behind_the_front(hearth):
    # Over its socket the API sees only the front; it must count the address the front
    # forwards, or one guesser would lock every client out.
    for _ in range(3):
        assert hearth.request("GET", "/api/v1/me", basic("admin", "wrong guess"), source="127.0.0.3")[0] == 401
    status, headers, body = hearth.request("GET", "/api/v1/me", basic("admin", "wrong guess"), source="127.0.0.3")
    assert status == 429 and "127.0.0.3" in json.loads(body)["reason"]
    status, _, _ = hearth.request("GET", "/api/v1/me", basic("admin", ADMIN_PASSWORD), source="127.0.0.4")
    assert status == 200


def test_kill_9_of_the_api_gives_503_with_retry_after_then_200(hearth):
    assert hearth.request("GET", "/api/openapi.json")[0] == 200  # a kept-alive pool connection exists
    child = hearth.state("api")["child_pid"]
    os.kill(child, signal.SIGKILL)
    seen: list[tuple[int, float, str | None]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            status, headers, _ = hearth.request("GET", "/api/openapi.json", timeout=CONNECT_TIMEOUT + 5)
        except OSError as error:
            raise AssertionError(f"request failed instead of answering: {error!r} after {seen}") from None
        seen.append((status, time.monotonic() - started, headers.get("Retry-After")))
        if status == 200 and any(s != 200 for s, _, _ in seen):
            break
        time.sleep(0.05)
    print(f"\nafter kill -9: {[(s, round(e, 3), r) for s, e, r in seen]}")
    statuses = [status for status, _, _ in seen]
    assert statuses[-1] == 200 and 503 in statuses, seen
    assert set(statuses) <= {200, 502, 503}, seen
    assert all(retry == "1" for status, _, retry in seen if status == 503), seen
    assert max(elapsed for _, elapsed, _ in seen) < CONNECT_TIMEOUT + 1, seen  # never a hang
    assert hearth.state("api")["child_pid"] != child and hearth.state("api")["restarts"] >= 1


def test_reload_signals_the_front_which_keeps_serving(hearth):
    child = hearth.state("front")["child_pid"]
    assert hearth.hearth("service", "front", "reload").returncode == 0
    log = hearth.var / "log" / "front.log"
    deadline = time.monotonic() + 10
    while "SIGHUP: no TLS certificate to reload" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.05)
    assert hearth.state("front")["child_pid"] == child
    assert hearth.request("GET", "/healthz")[0] == 200
