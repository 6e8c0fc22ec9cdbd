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
from datetime import datetime, timezone
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
            rate_burst = 2000  # a calendar of 1,000 items is uploaded in one go
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
    assert states == {"hello": "ok", "api": "ok", "sync": "ok", "dav": "ok", "files": "ok"}


def test_calendars_and_contacts_through_the_front_door(hearth):
    """`hearth up` runs hearth_dav behind the front end, and the caldav library uses it as a client would:
    discovery from the bare server address, calendars, recurring events with exceptions, todos, time-range
    searches with and without expansion, sync tokens over 1,000 items, and an address book."""
    client = caldav.DAVClient(url=f"http://127.0.0.1:{hearth.front_port}/", username="admin",
                              password=ADMIN_PASSWORD, require_tls=False)
    principal = client.principal()
    assert principal.url.path == "/dav/principals/admin/"
    assert principal.calendar_home_set.url.path == "/dav/calendars/admin/"
    assert [c.url.path for c in principal.calendars()] == ["/dav/calendars/admin/calendar/"]
    well_known = caldav.DAVClient(url=f"http://127.0.0.1:{hearth.front_port}/.well-known/caldav",
                                  username="admin", password=ADMIN_PASSWORD, require_tls=False)
    assert well_known.principal().url.path == "/dav/principals/admin/"
    nextcloud = caldav.DAVClient(url=f"http://127.0.0.1:{hearth.front_port}/remote.php/dav/", username="admin",
                                 password=ADMIN_PASSWORD, require_tls=False)  # as a Nextcloud account's address
    assert nextcloud.principal().calendar_home_set.url.path == "/dav/calendars/admin/"

    family = principal.make_calendar(name="Family", cal_id="family")
    family.save_event(STANDUP)
    family.save_event(DENTIST)
    family.save_todo(TAXES)
    march = {"start": datetime(2025, 3, 1, tzinfo=timezone.utc), "end": datetime(2025, 4, 1, tzinfo=timezone.utc)}
    found = family.search(event=True, **march)
    assert sorted(str(e.icalendar_component["uid"]) for e in found) == ["dentist", "standup"]
    expanded = family.search(event=True, expand=True, **march)
    starts = sorted(str(e.icalendar_component["dtstart"].dt.astimezone(timezone.utc)) for e in expanded
                    if e.icalendar_component["uid"] == "standup")
    # Weekly on Mondays from 3 March, 5 times; the 10th moved to 11:00, the 17th cancelled (Paris is UTC+1).
    assert starts == ["2025-03-03 08:00:00+00:00", "2025-03-10 10:00:00+00:00", "2025-03-24 08:00:00+00:00",
                      "2025-03-31 07:00:00+00:00"]  # the 31st is after the switch to summer time
    assert [t.icalendar_component["uid"] for t in family.search(todo=True, **march)] == ["taxes"]

    # One change among 1,000 items: the incremental sync returns exactly that item.
    headers = {**basic("admin", ADMIN_PASSWORD), "Content-Type": "text/calendar"}
    connection = http.client.HTTPConnection("127.0.0.1", hearth.front_port, timeout=10)
    try:
        for n in range(1000):
            connection.request("PUT", f"/dav/calendars/admin/family/bulk-{n}.ics", body=BULK % (n, n),
                               headers=headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 201
    finally:
        connection.close()
    initial = family.objects_by_sync_token(load_objects=False)
    assert len(list(initial)) == 1003
    status, _, _ = hearth.request("PUT", "/dav/calendars/admin/family/bulk-500.ics", headers,
                                  body=(BULK % (500, 500)).replace(b"Bulk", b"Changed"))
    assert status == 204
    changed = family.objects_by_sync_token(sync_token=initial.sync_token, load_objects=True)
    assert [o.url.path for o in changed] == ["/dav/calendars/admin/family/bulk-500.ics"]
    assert b"Changed" in list(changed)[0].data.encode()
    again = family.objects_by_sync_token(sync_token=changed.sync_token, load_objects=False)
    assert list(again) == []

    # An address book through the same door: a card stored byte for byte, found by a query on its e-mail.
    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:front-card\r\nFN:Ann Example\r\nEMAIL:ann@example.org\r\nEND:VCARD\r\n"
    status, _, _ = hearth.request("PUT", "/dav/addressbooks/admin/contacts/ann.vcf",
                                  {**basic("admin", ADMIN_PASSWORD), "Content-Type": "text/vcard"}, body=card)
    assert status == 201
    query = (b'<C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/>'
             b'<C:address-data/></D:prop><C:filter><C:prop-filter name="EMAIL"><C:text-match '
             b'match-type="ends-with">@example.org</C:text-match></C:prop-filter></C:filter></C:addressbook-query>')
    status, _, body = hearth.request("REPORT", "/dav/addressbooks/admin/contacts/",
                                     {**basic("admin", ADMIN_PASSWORD), "Depth": "1",
                                      "Content-Type": "application/xml"}, body=query)
    assert status == 207 and b"/dav/addressbooks/admin/contacts/ann.vcf" in body and b"FN:Ann Example" in body


STANDUP = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//hearth tests//EN
BEGIN:VEVENT
UID:standup
DTSTAMP:20250101T000000Z
DTSTART;TZID=Europe/Paris:20250303T090000
DTEND;TZID=Europe/Paris:20250303T091500
RRULE:FREQ=WEEKLY;COUNT=5
EXDATE;TZID=Europe/Paris:20250317T090000
SUMMARY:Standup
END:VEVENT
BEGIN:VEVENT
UID:standup
DTSTAMP:20250101T000000Z
RECURRENCE-ID;TZID=Europe/Paris:20250310T090000
DTSTART;TZID=Europe/Paris:20250310T110000
DTEND;TZID=Europe/Paris:20250310T111500
SUMMARY:Standup (moved)
END:VEVENT
END:VCALENDAR
"""
DENTIST = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//hearth tests//EN
BEGIN:VEVENT
UID:dentist
DTSTAMP:20250101T000000Z
DTSTART;VALUE=DATE:20250320
SUMMARY:Dentist (all day)
END:VEVENT
END:VCALENDAR
"""
TAXES = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//hearth tests//EN
BEGIN:VTODO
UID:taxes
DTSTAMP:20250101T000000Z
DUE:20250315T120000Z
SUMMARY:File taxes
END:VTODO
END:VCALENDAR
"""
BULK = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth tests//EN\r\nBEGIN:VEVENT\r\nUID:bulk-%d\r\n"
        b"DTSTAMP:20250101T000000Z\r\nDTSTART:20240101T100000Z\r\nDTEND:20240101T110000Z\r\nSUMMARY:Bulk %d\r\n"
        b"END:VEVENT\r\nEND:VCALENDAR\r\n")


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
