"""Numbers in requests, on every daemon's route table: ids too large for SQLite, negative, not numbers,
nan and inf answer 400 (or 404), never a 500 and never a long poll that does not end.

Each daemon runs in process on one real SQLite file; the routes come from the same tables that
drive the routers and the OpenAPI documents, so a route added later is swept too.
"""
from __future__ import annotations

import asyncio
import base64
import re

import pytest

from services.core import accounts
from services.core.config import load_config
from services.core.db import db_path, migrate, open_db, write
from services.core.schema import MIGRATION_SETS

PASSWORD = "numbers password"
AUTH = {"Authorization": "Basic " + base64.b64encode(f"nora:{PASSWORD}".encode()).decode()}
BAD_IDS = [str(2**63), str(2**64), "-1", "abc", "²", "1_0", "9" * 400]
BAD_NUMBERS = BAD_IDS + ["nan", "inf", "-inf", "1e400", "NaN", "Infinity"]
PLAUSIBLE = {"cid": "0" * 64, "name": "nora", "home": "calendars", "user": "nora"}


def _route_tables():
    from services.api.app import ROUTES as api
    from services.dav.app import API_ROUTES as dav
    from services.files.links import ROUTES as links
    from services.sync.app import ROUTES as sync
    return {"sync": sync, "api": api, "files": links, "dav": dav}


def _apps():
    from services.api.app import create_app as api
    from services.dav.app import create_app as dav
    from services.files.app import create_app as files
    from services.sync.app import create_app as sync
    return {"sync": sync, "api": api, "files": files, "dav": dav}


def _numeric(params: dict) -> list[str]:
    return [name for name, schema in params.items() if schema.get("type") in ("integer", "number")]


PATH_CASES = [(daemon, route.method, route.path, name)
              for daemon, routes in _route_tables().items() for route in routes
              for name in _numeric(route.path_params)]
QUERY_CASES = [(daemon, route.method, route.path, name)
               for daemon, routes in _route_tables().items() for route in routes
               for name in _numeric(route.query_params)]


def test_the_sweep_covers_the_id_routes_of_every_daemon():
    assert {daemon for daemon, *_ in PATH_CASES} == {"sync", "api", "files", "dav"}
    assert ("sync", "GET", "/sync/v1/folders/{id}/changes", "wait") in QUERY_CASES


@pytest.fixture
def home(tmp_path):
    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    path = db_path(tmp_path / "var")
    migrate(path, MIGRATION_SETS)
    db = open_db(path)
    write(db, lambda d: accounts.create_user(d, "nora", accounts.hash_password(PASSWORD), admin=True))
    db.close()
    return tmp_path


@pytest.fixture
async def clients(home, aiohttp_client):
    config = load_config(home / "hearth.toml")
    made = {}

    async def client(daemon: str):
        if daemon not in made:
            made[daemon] = await aiohttp_client(_apps()[daemon](config))
        return made[daemon]

    return client


def _fill(path: str, name: str, value: str) -> str:
    """The route's path with `value` for the parameter `name`, a plausible value for the others."""
    return re.sub(r"\{(\w+)\}", lambda m: value if m.group(1) == name else PLAUSIBLE.get(m.group(1), "1"), path)


async def _status(client, method: str, url: str, **kwargs) -> int:
    # The timeout is the test of `wait=nan`: before the fix such a poll never answered.
    async with asyncio.timeout(10):
        async with client.request(method, url, headers=AUTH, **kwargs) as response:
            await response.read()
            return response.status


@pytest.mark.parametrize("daemon", ["sync", "api", "files", "dav"])
async def test_a_bad_number_in_a_path_or_query_is_a_client_error(clients, daemon):
    client = await clients(daemon)
    async with client.post("/sync/v1/folders", json={"name": "Numbers"}, headers=AUTH) as response:
        own = str((await response.json())["id"]) if response.status == 201 else "1"
    answers = []
    for _, method, path, name in [case for case in PATH_CASES if case[0] == daemon]:
        for bad in BAD_IDS:
            url = _fill(path, name, bad)
            answers.append((method, url, await _status(client, method, url, json={})))
    for _, method, path, name in [case for case in QUERY_CASES if case[0] == daemon]:
        url = _fill(path, "id", own)  # a folder of nora's, so the query is what is judged
        for bad in BAD_NUMBERS:
            answers.append((method, f"{url}?{name}={bad}",
                            await _status(client, method, url, params={name: bad})))
    assert answers and [a for a in answers if a[2] not in (400, 404)] == []


async def test_a_long_poll_still_takes_a_plain_number_of_seconds(clients):
    client = await clients("sync")
    async with client.post("/sync/v1/folders", json={"name": "Poll"}, headers=AUTH) as response:
        folder = (await response.json())["id"]
    for wait in ("0.2", "2e-1", "0", ""):
        assert await _status(client, "GET", f"/sync/v1/folders/{folder}/changes", params={"wait": wait}) == 200


@pytest.mark.parametrize("body", [
    b'{"folder": 18446744073709551616}', b'{"folder": 9223372036854775808, "path": ""}',
    b'{"folder": -9223372036854775809}', b'{"folder": NaN}', b'{"folder": Infinity}', b'{"folder": 1e400}'])
async def test_numbers_in_a_json_body_beyond_64_bits_or_not_finite_are_refused(clients, body):
    client = await clients("files")
    async with asyncio.timeout(10):
        async with client.post("/files/api/v1/links", data=body,
                               headers={**AUTH, "Content-Type": "application/json"}) as response:
            answer = await response.json()
    assert response.status == 400 and answer["error"] == "bad-request", answer
    assert answer["reason"].startswith("body: "), answer


async def test_a_lock_timeout_that_is_no_number_gets_the_default(clients):
    client = await clients("files")
    async with client.request("MKCOL", "/files/nora/Locks/", headers=AUTH) as response:
        assert response.status == 201
    lockinfo = (b'<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope>'
                b'<D:locktype><D:write/></D:locktype></D:lockinfo>')
    for timeout in ("Second-\u00b2", "Second-\u0663", "Second-99999999999999999999999", "Second-nan", "Second--5"):
        async with client.request("LOCK", "/files/nora/Locks/f.txt", data=lockinfo,
                                  headers={**AUTH, "Timeout": timeout}) as response:
            body = await response.text()
            assert response.status in (200, 201), (timeout, body)
            token = response.headers["Lock-Token"]
        assert re.search(r"<D:timeout>Second-[0-9]+</D:timeout>", body, re.I), body
        async with client.request("UNLOCK", "/files/nora/Locks/f.txt",
                                  headers={**AUTH, "Lock-Token": token}) as response:
            assert response.status == 204
