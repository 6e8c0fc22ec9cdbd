"""The door's limits with default settings, as `hearth up` runs them: a household's clients behind one
address are never throttled, while an anonymous flood and password guessing from one address are cut off.

Only [front] listen is set: rate_limit, rate_burst and [auth] are the defaults a new household gets.
"""
from __future__ import annotations

import base64
import http.client
import json
import threading
from collections import Counter

import pytest

from tests.installation import ADMIN_PASSWORD, OnePort, running

CLIENTS = 4
FILES_PER_CLIENT = 100
CALENDAR_QUERY = (b'<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/>'
                  b'</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/>'
                  b'</C:comp-filter></C:filter></C:calendar-query>')


class Door(OnePort):
    def connect(self, source: str = "127.0.0.1") -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def ask(connection: http.client.HTTPConnection, method: str, path: str, headers: dict,
        body: bytes | None = None) -> tuple[int, http.client.HTTPResponse, bytes]:
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    return response.status, response, response.read()


@pytest.fixture(scope="module")
def door(tmp_path_factory):
    installation = Door(tmp_path_factory.mktemp("door"))
    with running(installation):
        yield installation


def test_a_household_burst_of_2000_authenticated_requests_behind_one_address_never_sees_429(door):
    app_password = door.ok("token", "add", "admin", "--label", "phone").stdout.strip()
    # Two devices log in with the account password, two with the phone's app password.
    credentials = [basic("admin", ADMIN_PASSWORD), basic("admin", app_password)] * (CLIENTS // 2)
    connection = door.connect()
    assert ask(connection, "MKCOL", "/files/admin/docs/", credentials[0])[0] == 201
    status, _, body = ask(connection, "GET", "/sync/v1/folders", credentials[0])
    folder = next(f["id"] for f in json.loads(body) if f["name"] == "docs")
    connection.close()
    statuses: Counter = Counter()
    failures: list[str] = []

    def device(number: int) -> None:
        """Upload 100 files over WebDAV, then list, read, query the calendar and delete them one by one."""
        auth = credentials[number]
        connection = door.connect()

        def expect(wanted: int, method: str, path: str, headers: dict | None = None, body: bytes | None = None):
            status, _, data = ask(connection, method, path, {**auth, **(headers or {})}, body)
            statuses[status] += 1
            if status != wanted:
                failures.append(f"{method} {path}: {status} {data[:200]!r}")
            return data

        try:
            for n in range(FILES_PER_CLIENT):
                expect(201, "PUT", f"/files/admin/docs/d{number}-{n}.txt", body=b"file %d" % n)
            changes = json.loads(expect(200, "GET", f"/sync/v1/folders/{folder}/changes?since=0"))["changes"]
            revisions = {change["path"]: change["id"] for change in changes}
            for n in range(FILES_PER_CLIENT):
                expect(207, "PROPFIND", "/files/admin/docs/", {"Depth": "1"})
                expect(200, "GET", f"/files/admin/docs/d{number}-{n}.txt")
                expect(207, "REPORT", "/dav/calendars/admin/calendar/",
                       {"Depth": "1", "Content-Type": "application/xml"}, CALENDAR_QUERY)
                expect(200, "POST", f"/sync/v1/folders/{folder}/delete", {"Content-Type": "application/json"},
                       json.dumps({"path": f"d{number}-{n}.txt", "base_revision": revisions[f"d{number}-{n}.txt"],
                                   "device": f"device {number}"}).encode())
        except Exception as error:  # reported by the test thread
            failures.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=device, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(statuses.values()) == CLIENTS * (FILES_PER_CLIENT * 5 + 1) == 2004
    assert statuses[429] == 0 and not failures, (statuses, failures[:5])


def flood(door: Door, source: str, method: str, path: str, headers: dict, most: int = 3000) -> tuple[int, dict]:
    """Requests as fast as one connection allows until the first 429: (how many passed, the 429's headers)."""
    connection = door.connect(source)
    try:
        for sent in range(most):
            status, response, _ = ask(connection, method, path, headers)
            if status == 429:
                return sent, dict(response.getheaders())
            if response.will_close:
                connection.close()
                connection = door.connect(source)
    finally:
        connection.close()
    raise AssertionError(f"{most} requests from {source} and never a 429")


def test_an_anonymous_flood_is_cut_off_and_the_household_behind_that_address_is_not(door):
    passed, headers = flood(door, "127.0.0.2", "GET", "/api/openapi.json", {})
    assert 400 <= passed < 3000 and int(headers["Retry-After"]) >= 1  # the default burst of 400, then 429
    # A device of the household behind the same address, with credentials the door has seen confirmed.
    connection = door.connect("127.0.0.2")
    assert ask(connection, "GET", "/api/v1/me", basic("admin", ADMIN_PASSWORD))[0] == 200
    connection.close()


def test_made_up_credentials_do_not_get_past_the_door(door):
    passed, headers = flood(door, "127.0.0.3", "GET", "/api/openapi.json", basic("admin", "made up"))
    assert passed < 3000 and int(headers["Retry-After"]) >= 1


def test_password_guessing_is_cut_off(door):
    passed, headers = flood(door, "127.0.0.4", "PROPFIND", "/files/admin/", basic("admin", "guess"))
    assert passed == 10 and int(headers["Retry-After"]) >= 1  # [auth] max_failures, over every daemon
    connection = door.connect("127.0.0.4")  # even the right password waits for the window to pass
    assert ask(connection, "GET", "/api/v1/me", basic("admin", ADMIN_PASSWORD))[0] == 429
    connection.close()
