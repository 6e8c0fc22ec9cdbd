"""One failed-login limit for the whole suite: the API and the DAV daemon as their own processes over one
data directory count a client address's failures together, and a restart forgets none of them."""
from __future__ import annotations

import base64
import sqlite3

import pytest

from tests.daemons import LoopbackDaemon, serving
from tests.dav_harness import DavDaemon

# An hour: a daemon restarts well inside it however busy the machine; the test then lets the hour pass by
# moving the recorded failures back in the real database, which every daemon reads at each login.
MAX_FAILURES, WINDOW = 4, 3600


class ApiDaemon(LoopbackDaemon):
    module, section = "services.api", "api"

    def healthy(self) -> bool:
        return self.exchange("GET", "/healthz")[0] == 200


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def pair(tmp_path):
    """(api, dav): two daemons, one database, [auth] max_failures = 4 within an hour."""
    limit = f"[auth]\nmax_failures = {MAX_FAILURES}\nfailure_window = {WINDOW}\n"
    (tmp_path / "api").mkdir()
    api = ApiDaemon(tmp_path / "api")
    api.config.write_text(api.config.read_text() + limit)
    (tmp_path / "dav").mkdir()
    dav = DavDaemon(tmp_path / "dav")
    dav.on_data_of(api.home).config.write_text(dav.config.read_text() + limit)
    with serving(api, "alice"), serving(dav):
        yield api, dav


def test_failures_on_two_daemons_are_counted_together_survive_a_restart_and_age_out(pair):
    api, dav = pair
    me, principal = "/api/v1/me", "/dav/principals/alice/"
    assert api.exchange("GET", me, user="alice")[0] == 200  # a success writes nothing
    database = api.home / "var" / "db" / "hearth.sqlite3"
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM auth_failures").fetchone()[0] == 0

    wrong = basic("alice", "a guess")
    assert api.exchange("GET", me, headers=wrong)[0] == 401
    assert api.exchange("GET", me, headers=wrong)[0] == 401
    assert dav.exchange("PROPFIND", principal, headers=wrong)[0] == 401
    assert dav.exchange("PROPFIND", principal, headers=wrong)[0] == 401
    # Four failures in all: both daemons now refuse this address, even the right password.
    status, headers, body = api.exchange("GET", me, user="alice")
    assert status == 429 and WINDOW - 120 <= int(headers["retry-after"]) <= WINDOW, body
    assert dav.exchange("PROPFIND", principal, user="alice")[0] == 429

    dav.stop()
    dav.start()
    status, headers, _ = dav.exchange("PROPFIND", principal, user="alice")
    assert status == 429 and "retry-after" in headers

    # Nearly an hour later the address is still refused; once the oldest failure is older than the window,
    # it is let in again.
    def age(seconds: int) -> None:
        with sqlite3.connect(database) as db:
            db.execute("UPDATE auth_failures SET at = at - ?", [seconds])
    age(WINDOW - 60)
    assert api.exchange("GET", me, user="alice")[0] == 429
    age(60)
    assert api.exchange("GET", me, user="alice")[0] == 200
    assert dav.exchange("PROPFIND", principal, user="alice")[0] == 207
