"""Staging and production slots: `hearth deploy` and `hearth promote` against real processes.

The slotted service is not our code: Python's own `http.server`, told where to
listen by $HOST and $PORT, serving a directory whose index.html names the
version (deploying a new version points it at another directory). Everything
is configured only in hearth.toml and driven through the `hearth` command.
"""
from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from services.core.config import ConfigError, load_config
from services.core.slots import SlotRecord, write_record
from services.front.routes import RouteTable
from services.front.slots import Slots
from tests.installation import Installation, free_port, running

CONNECTIONS = 8  # concurrent keep-alive client connections hammering the prod route

# A user's program that can only listen where $HEARTH_LISTEN says (a Unix socket here) and
# answers which colour it is ($HEARTH_SLOT).
SOCKET_SERVER = """\
import http.server, os, socketserver
path = os.environ["HEARTH_LISTEN"].removeprefix("unix:")
class Colour(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ["HEARTH_SLOT"].encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
if os.path.exists(path):
    os.unlink(path)
socketserver.UnixStreamServer(path, Colour).serve_forever()
"""


def version_command(root: Path, version: str) -> str:
    """`python3 -m http.server` on the slot's $HOST:$PORT serving www-VERSION, one connection per request."""
    serve = (f'exec python3 -m http.server "$PORT" --bind "$HOST" --protocol HTTP/1.0 '
             f'--directory {shlex.quote(str(root / f"www-{version}"))}')
    return shlex.join(["sh", "-c", serve])


class Hearth(Installation):
    """One installation in a temp dir: hello (TCP) and colour (Unix sockets) in slots, plain without."""

    def __init__(self, root: Path):
        self.front_port = free_port()
        for version in ("v1", "v2", "broken"):
            (root / f"www-{version}").mkdir()
            (root / f"www-{version}" / "index.html").write_text(f"{version}\n")
            if version != "broken":  # broken never passes its health check
                (root / f"www-{version}" / "health.txt").write_text("ok\n")
        (root / "colour.py").write_text(SOCKET_SERVER)
        super().__init__(root, textwrap.dedent(f"""\
            data_dir = "var"
            [front]
            listen = "127.0.0.1:{self.front_port}"
            rate_limit = 1000000.0
            rate_burst = 1000000
            [supervisor]
            ready_timeout = 20

            [[service]]
            name = "hello"
            command = {json.dumps(version_command(root, "v1"))}
            slots = true
            listen_slots = ["127.0.0.1:{free_port()}", "127.0.0.1:{free_port()}"]
            route = "/hello/"
            staging_route = "/hello-staging/"
            strip_prefix = true
            health = "/health.txt"

            [[service]]
            name = "colour"
            command = ["python3", "{root / 'colour.py'}"]
            slots = true
            route = "/colour/"
            staging_route = "/colour-staging/"

            [[service]]
            name = "plain"
            command = ["sleep", "600"]
            """))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.front_port}{path}", timeout=10) as response:
                return response.status, response.read().decode().strip()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def versions(self) -> tuple[str, str]:
        (prod_status, prod), (staging_status, staging) = self.get("/hello/"), self.get("/hello-staging/")
        assert prod_status == staging_status == 200, (prod, staging)
        return prod, staging

    def record(self, name: str = "hello") -> dict:
        return json.loads((self.var / "run" / "slots" / f"{name}.json").read_text())

    def status_rows(self) -> dict[str, list[str]]:
        """Only the slots' rows (name@slot(colour))."""
        return {name: row for name, row in super().status_rows().items() if "@" in name}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    h = Hearth(tmp_path_factory.mktemp("slots"))
    with running(h) as up:
        h.up_output = up.stdout
        yield h


async def hammer_during(h: Hearth, *command: str, before: float = 0.7, after: float = 0.7) -> dict:
    """Request the prod route over CONNECTIONS keep-alive connections while `hearth COMMAND` runs."""
    url = f"http://127.0.0.1:{h.front_port}/hello/"
    answers: list[tuple[int, float, float, int, str]] = []  # connection, sent, received, status, version
    errors: list[str] = []
    stop = asyncio.Event()

    async def client(session: aiohttp.ClientSession, connection: int) -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                async with session.get(url) as response:
                    body = (await response.read()).decode().strip()
                    answers.append((connection, sent, time.monotonic(), response.status, body))
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                errors.append(f"{type(error).__name__}: {error}")

    async def run_command() -> tuple[subprocess.CompletedProcess, float]:
        await asyncio.sleep(before)
        result = await asyncio.to_thread(h.hearth, *command)
        returned = time.monotonic()
        await asyncio.sleep(after)
        stop.set()
        return result, returned

    sessions = [aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1, force_close=False),
                                      timeout=aiohttp.ClientTimeout(total=10)) for _ in range(CONNECTIONS)]
    try:
        (result, returned), *_ = await asyncio.gather(
            run_command(), *(client(session, n) for n, session in enumerate(sessions)))
    finally:
        for session in sessions:
            await session.close()
    return {"result": result, "returned": returned, "answers": answers, "errors": errors}


def assert_switched_once(run: dict, old: str, new: str) -> None:
    """Every answer 2xx, the version goes old -> new once per connection, never back once the new was seen."""
    answers = run["answers"]
    assert not run["errors"], run["errors"][:5]
    bad = [a for a in answers if not 200 <= a[3] < 300]
    assert not bad, bad[:5]
    assert {a[4] for a in answers} == {old, new}
    for connection in range(CONNECTIONS):
        seen = [a[4] for a in answers if a[0] == connection]
        switch = seen.index(new) if new in seen else len(seen)
        assert seen[:switch] == [old] * switch and seen[switch:] == [new] * (len(seen) - switch), \
            f"connection {connection} flapped: {seen}"
    # Causality across connections: once anyone got the new version, nobody asking later gets the old.
    first_new = min(received for _, _, received, _, version in answers if version == new)
    late_old = [a for a in answers if a[1] > first_new and a[4] == old]
    assert not late_old, late_old[:5]
    # And once promote has returned, every new request goes to the new prod.
    assert all(a[4] == new for a in answers if a[1] > run["returned"])


def test_up_runs_both_slots_with_their_labels(suite):
    out = suite.up_output
    assert "hello@prod(blue): ready" in out and "hello@staging(green): ready" in out
    assert suite.versions() == ("v1", "v1")
    rows = suite.status_rows()
    assert rows["hello@prod(blue)"][1] == rows["hello@staging(green)"][1] == "running"
    assert rows["colour@prod(blue)"][1] == "running"
    record = suite.record()
    assert (record["prod"], record["staging"]) == ("blue", "green")
    assert record["blue"]["command"] == record["green"]["command"] == shlex.split(version_command(suite.root, "v1"))
    for colour in ("blue", "green"):
        assert (suite.var / "run" / f"hello_{colour}.pid").exists()
        assert (suite.var / "log" / f"hello_{colour}.log").exists()
    # Without listen_slots each colour gets a Unix socket, named in $HEARTH_LISTEN.
    assert suite.get("/colour/") == (200, "blue") and suite.get("/colour-staging/") == (200, "green")
    assert (suite.var / "run" / "colour_green.sock").exists()
    slots = json.loads(suite.get("/healthz")[1])["slots"]
    assert slots["hello"]["prod"] == "blue" and slots["hello"]["generation"] == 1


def test_deploy_to_staging_leaves_prod_serving(suite):
    v2 = version_command(suite.root, "v2")
    run = asyncio.run(hammer_during(suite, "deploy", "hello", "--slot", "staging", "--command", v2))
    assert run["result"].returncode == 0, run["result"].stdout + run["result"].stderr
    assert "hello@staging(green): deployed" in run["result"].stdout
    assert not run["errors"] and {(a[3], a[4]) for a in run["answers"]} == {(200, "v1")}
    print(f"\nduring deploy: {len(run['answers'])} prod requests, all 200 v1")
    assert suite.versions() == ("v1", "v2")
    assert suite.record()["green"]["command"] == shlex.split(v2)
    assert suite.record()["green"]["status"] == "ready"


def test_promote_under_load_fails_no_request(suite):
    run = asyncio.run(hammer_during(suite, "promote", "hello"))
    assert run["result"].returncode == 0, run["result"].stdout + run["result"].stderr
    assert "green is prod now" in run["result"].stdout
    non_2xx = sum(1 for a in run["answers"] if not 200 <= a[3] < 300)
    print(f"\nduring promote: {len(run['answers'])} prod requests over {CONNECTIONS} connections, "
          f"{non_2xx} non-2xx, {len(run['errors'])} connection errors")
    assert_switched_once(run, "v1", "v2")
    assert suite.versions() == ("v2", "v1")
    record = suite.record()
    assert (record["prod"], record["staging"], record["generation"]) == ("green", "blue", 2)
    rows = suite.status_rows()
    assert "hello@prod(green)" in rows and "hello@staging(blue)" in rows


def test_promote_again_rolls_back_under_load(suite):
    run = asyncio.run(hammer_during(suite, "promote", "hello"))
    assert run["result"].returncode == 0, run["result"].stdout + run["result"].stderr
    assert_switched_once(run, "v2", "v1")
    assert suite.versions() == ("v1", "v2")
    slots = json.loads(suite.get("/healthz/slots")[1])
    assert slots["hello"]["prod"] == "blue" and slots["hello"]["generation"] == 3
    assert slots["hello"]["in_flight"]["green"]["prod"] == 0


def test_a_deploy_that_fails_its_health_check_leaves_prod_alone(suite):
    broken = version_command(suite.root, "broken")
    result = suite.hearth("deploy", "hello", "--timeout", "2", "--command", broken)
    assert result.returncode != 0
    assert "deploy failed: hello@staging(green) did not become ready" in result.stderr
    assert "hello@prod(blue) is unaffected" in result.stderr
    assert suite.record()["green"]["status"] == "failed"
    assert suite.get("/hello/") == (200, "v1")
    refused = suite.hearth("promote", "hello")
    assert refused.returncode == 1 and "nothing changed" in refused.stderr
    assert suite.get("/hello/") == (200, "v1") and suite.record()["prod"] == "blue"
    # A broken staging is not the door's problem, nor does it keep `hearth up` (after a reboot) from finishing.
    status, body = suite.get("/healthz")
    assert status == 200 and json.loads(body)["upstreams"]["hello@green"]["state"] == "failing", body
    started = time.monotonic()
    up = suite.ok("up")
    assert "hello@prod(blue): ready" in up.stdout and time.monotonic() - started < 15
    # a good deploy makes staging promotable again
    suite.ok("deploy", "hello", "--", "sh", "-c", shlex.split(version_command(suite.root, "v2"))[2])
    assert suite.versions() == ("v1", "v2")


@pytest.mark.parametrize("args, message", [
    (("promote", "nosuch"), "no service named 'nosuch'"),
    (("deploy", "nosuch"), "no service named 'nosuch'"),
    (("promote", "plain"), "service 'plain' has no slots"),
    (("deploy", "plain", "--slot", "staging"), "service 'plain' has no slots"),
    (("deploy", "hello", "--slot", "prod"), "pass --force"),
    (("deploy", "hello", "--command", "x", "--", "y"), "not both"),
    (("service", "hello", "restart"), "hello runs as two slots"),
])
def test_bad_input_exits_2_with_one_line(suite, args, message):
    result = suite.hearth(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert suite.get("/hello/") == (200, "v1")


def test_service_verbs_take_slot_names(suite):
    result = suite.ok("service", "hello@staging", "status")
    assert "running" in result.stdout


def test_down_stops_both_slots_and_leaves_no_pid_file(suite):
    children = [suite.state(name)["child_pid"] for name in ("hello_blue", "hello_green", "colour_blue", "colour_green")]
    out = suite.ok("down").stdout
    assert "hello@prod(blue): stopped" in out and "hello@staging(green): stopped" in out
    assert suite.pidfiles() == []
    for pid in children:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# In-process: the config checks and the front end's slot table.

SLOTTED = """
    [[service]]
    name = "hello"
    command = "true"
    slots = true
    route = "/hello/"
    staging_route = "/hello-staging/"
"""


def config_for(tmp_path, text: str):
    path = tmp_path / "hearth.toml"
    path.write_text('data_dir = "var"\n' + textwrap.dedent(text))
    return load_config(path, environ={})


@pytest.mark.parametrize("change, message", [
    (("staging_route = \"/hello-staging/\"", ""), "needs staging_route or staging_host"),
    (("slots = true", "slots = true\nlisten = \"127.0.0.1:9000\""), "use listen_slots"),
    (("slots = true", "slots = true\nhealth = \"http://127.0.0.1:9000/\""), "a path such as"),
    (("slots = true", "slots = true\nlisten_slots = [\"127.0.0.1:9000\"]"), "two different addresses"),
    (("staging_route = \"/hello-staging/\"", "staging_route = \"/hello\""), "the same as route"),
    (("slots = true", "slots = false\nlisten = \"127.0.0.1:9000\""), "only with slots = true"),
    (("route = \"/hello/\"\n", ""), "needs route"),
])
def test_slot_config_errors(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        config_for(tmp_path, SLOTTED.replace(*change))


def test_a_slot_instance_name_cannot_be_taken(tmp_path):
    with pytest.raises(ConfigError, match="taken by a slot of service 'hello'"):
        config_for(tmp_path, SLOTTED + '\n[[service]]\nname = "hello_green"\ncommand = "true"\n')


def test_the_front_resolves_labels_per_request_and_counts_in_flight(tmp_path):
    config = config_for(tmp_path, SLOTTED + """
        [[route]]
        path = "/preview/"
        service = "hello@staging"
        """)
    routes = RouteTable.from_config(config)
    assert [a.label for a in routes.upstreams()] == ["hello@blue", "hello@green", "api", "sync", "dav", "files"]
    staging, prod = routes.match("h", "/hello-staging/x").upstream, routes.match("h", "/hello/x").upstream
    assert routes.match("h", "/preview/").upstream == staging
    slots = Slots(config.data_dir, routes.slotted)
    with slots.serving(prod) as address:
        assert address.label == "hello@blue" and address.socket.name == "hello_blue.sock"
        write_record(config.data_dir, SlotRecord.initial(config.services[0]).promoted())
        slots.reload()
        with slots.serving(prod) as after, slots.serving(staging) as other:
            assert (after.label, other.label) == ("hello@green", "hello@blue")
            counts = slots.report()["hello"]["in_flight"]
            assert counts == {"blue": {"prod": 1, "staging": 1}, "green": {"prod": 1, "staging": 0}}
    assert slots.report()["hello"] == {"generation": 2, "prod": "green", "staging": "blue", "in_flight": {
        "blue": {"prod": 0, "staging": 0}, "green": {"prod": 0, "staging": 0}}}
