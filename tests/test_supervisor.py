"""`hearth up | down | status | service` with real rc.d scripts, real daemons, real signals."""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests.installation import Installation, clean_environ, free_port


class Suite(Installation):
    """One installation in a temp dir: the API on TCP, the front, `extra` services and [supervisor] settings."""

    def __init__(self, root: Path, extra: str = "", supervisor: str = ""):
        self.port = free_port()        # the API, on TCP here so tests can reach it directly
        self.front_port = free_port()  # the one door, whose URL `hearth up` prints
        super().__init__(root, textwrap.dedent(f"""\
            data_dir = "var"
            [api]
            listen = "127.0.0.1:{self.port}"
            [front]
            listen = "127.0.0.1:{self.front_port}"
            [supervisor]
            ready_timeout = 20
            {supervisor}
            """) + textwrap.dedent(extra))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def get(url: str) -> tuple[int, str]:
    if shutil.which("curl"):
        out = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", url],
                             capture_output=True, text=True, timeout=10)
        body, _, code = out.stdout.rpartition("\n")
        return int(code), body
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read().decode()


@pytest.fixture
def suite(tmp_path):
    made = []

    def make(**kwargs) -> Suite:
        made.append(Suite(tmp_path, **kwargs))
        return made[-1]

    yield make
    for s in made:
        s.hearth("down")


HELLO = """
[[service]]
name = "hello"
command = ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
health = "http://127.0.0.1:{port}/"
requires = ["api"]
description = "not our code: the stdlib file server"

[[service]]
name = "ticker"
command = "sh -c 'while :; do echo tick $$; sleep 0.2; done'"
env = {{ TICKER_SECRET = "do-not-log-me" }}
"""


def test_up_serves_healthz_and_down_leaves_nothing(suite):
    hello_port = free_port()
    s = suite(extra=HELLO.format(port=hello_port))
    up = s.hearth("up", check=True)
    assert f"hearth is up: http://127.0.0.1:{s.front_port}/" in up.stdout
    # rcorder: hello and front REQUIRE hearth_api, so api is ready before they start.
    assert up.stdout.index("api: ready") < up.stdout.index("hello: ready")
    assert up.stdout.index("api: ready") < up.stdout.index("front: ready")
    assert "admin password" not in up.stdout  # it came from HEARTH_ADMIN_PASSWORD

    code, body = get(f"http://127.0.0.1:{s.port}/healthz")
    assert code == 200 and json.loads(body)["status"] == "ok"
    code, body = get(f"http://127.0.0.1:{s.front_port}/healthz")
    assert code == 200 and json.loads(body)["upstreams"]["api"]["state"] == "ok"
    assert get(f"http://127.0.0.1:{hello_port}/")[0] == 200

    status = s.hearth("status")
    assert status.returncode == 0, status.stdout + status.stderr
    lines = status.stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "LOG"]
    # Below the table, an object store says whether it is reached ("blobs: s3://…: ok"); local blobs say nothing.
    names = {line.split()[0]: line.split() for line in lines[1:] if not line.startswith("blobs: ")}
    assert set(names) == {"api", "sync", "dav", "files", "front", "tunnel", "rotate", "hello", "ticker"}
    assert all(row[1] == "running" for row in names.values())

    ticker_log = s.var / "log" / "ticker.log"
    s.wait_for(lambda: "tick" in ticker_log.read_text(), what="ticker output in its log")
    assert "do-not-log-me" not in ticker_log.read_text()

    pids = [s.state(name)["child_pid"] for name in names] + [s.state(name)["supervisor_pid"] for name in names]
    assert all(alive(pid) for pid in pids)
    s.hearth("down", check=True)
    s.wait_for(lambda: not any(alive(pid) for pid in pids), what="every process to exit")
    assert s.pidfiles() == []
    assert s.hearth("status").returncode == 4


def test_kill_9_child_is_restarted_and_status_counts_it(suite):
    s = suite()
    s.hearth("up", check=True)
    old = s.state("api")["child_pid"]
    os.kill(old, signal.SIGKILL)
    killed_at = time.monotonic()
    new = s.wait_for(lambda: (pid := s.state("api").get("child_pid")) not in (None, old) and pid, timeout=5,
                     what="a new api child")
    assert time.monotonic() - killed_at < 2.0
    s.wait_for(lambda: get(f"http://127.0.0.1:{s.port}/healthz")[0] == 200 if s.state("api")["state"] == "running"
               else False, what="api healthy again")
    row = next(line.split() for line in s.hearth("status").stdout.splitlines() if line.startswith("api "))
    assert row[1] == "running" and row[2] == str(new) and row[4] == "1"


def test_kill_9_wrapper_leaves_a_stale_pidfile_that_start_cleans(suite):
    s = suite()
    s.hearth("up", check=True)
    wrapper, child = s.state("api")["supervisor_pid"], s.state("api")["child_pid"]
    os.kill(wrapper, signal.SIGKILL)
    s.wait_for(lambda: not alive(child), what="the orphaned child to die with its wrapper")
    status = s.hearth("status")
    assert status.returncode == 4
    assert "api: dead: stale pid file" in status.stdout
    rc_status = s.hearth("service", "api", "status")
    assert rc_status.returncode == 4 and "stale pid file" in rc_status.stdout
    s.hearth("service", "api", "start", check=True)
    assert s.state("api")["supervisor_pid"] != wrapper
    assert get(f"http://127.0.0.1:{s.port}/healthz")[0] == 200
    assert s.hearth("status").returncode == 0


CRASHER = """
[[service]]
name = "crasher"
command = ["sh", "-c", "echo crashing; exit 1"]
"""


def test_crash_loop_backs_off_and_gives_up(suite):
    s = suite(extra=CRASHER, supervisor="restart_delay = 0.2\nbackoff_max = 0.8\nmax_restarts = 4\n")
    up = s.hearth("up")
    assert up.returncode == 1
    assert "crasher did not become ready" in up.stderr and "giving up after 4 restarts" in up.stderr
    assert "crashing" in up.stderr  # the last log lines are shown
    log = (s.var / "log" / "crasher.log").read_text().splitlines()
    delays = [float(line.split("restarting in ")[1].split(" s")[0]) for line in log if "restarting in" in line]
    assert delays == [0.2, 0.4, 0.8, 0.8]
    status = s.hearth("status")
    assert status.returncode == 4
    assert "crasher: gave-up: gave up after 4 restarts" in status.stdout


def test_dont_restart_exit_stops_with_a_reason(suite):
    s = suite(extra='[[service]]\nname = "misconfigured"\ncommand = ["sh", "-c", "exit 78"]\n')
    up = s.hearth("up")
    assert up.returncode == 1
    state = s.state("misconfigured")
    assert state["state"] == "exited" and state["restarts"] == 0
    assert "configuration" in state["reason"]
    assert "misconfigured: exited" in s.hearth("status").stdout


def test_dependency_cycle_is_a_clear_error(suite):
    s = suite(extra=textwrap.dedent("""
        [[service]]
        name = "a"
        command = "sleep 60"
        requires = ["b"]
        [[service]]
        name = "b"
        command = "sleep 60"
        requires = ["a"]
        """))
    up = s.hearth("up")
    assert up.returncode == 2
    assert "dependency cycle" in up.stderr and "hearth_a" in up.stderr and "hearth_b" in up.stderr
    assert s.pidfiles() == []  # nothing was started


def test_service_verbs(suite):
    s = suite()
    s.hearth("up", check=True)
    status = s.hearth("service", "api", "status")
    assert status.returncode == 0 and "hearth_api is running as pid" in status.stdout
    first = s.state("api")["supervisor_pid"]
    s.hearth("service", "hearth_api", "restart", check=True)
    assert s.state("api")["supervisor_pid"] != first
    child = s.state("api")["child_pid"]
    assert s.hearth("service", "api", "reload").returncode == 0
    s.wait_for(lambda: "SIGHUP: nothing to reload" in (s.var / "log" / "api.log").read_text(), what="reload logged")
    assert s.state("api")["child_pid"] == child and alive(child)  # reloaded, not killed and restarted
    s.hearth("service", "api", "stop", check=True)
    assert not (s.var / "run" / "api.pid").exists() and not alive(child)
    assert s.hearth("service", "api", "status").returncode == 4
    unknown = s.hearth("service", "nope", "start")
    assert unknown.returncode == 2 and "no service named 'nope'" in unknown.stderr


def test_first_up_writes_a_config_and_prints_a_working_admin_password(tmp_path):
    port = free_port()
    # the starter config puts the API on a socket behind it
    env = clean_environ(HEARTH_FRONT_LISTEN=f"127.0.0.1:{port}")

    def hearth(*args):
        return subprocess.run([sys.executable, "-m", "services.cli", *args], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=90)

    try:
        first = hearth("up")
        assert first.returncode == 0, first.stdout + first.stderr
        assert "wrote a starter hearth.toml" in first.stdout and (tmp_path / "hearth.toml").exists()
        assert f"hearth is up: http://127.0.0.1:{port}/" in first.stdout
        password = first.stdout.split("admin password")[1].split(": ", 1)[1].strip()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/me")
        request.add_header("Authorization", "Basic " + __import__("base64").b64encode(
            f"admin:{password}".encode()).decode())
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["name"] == "admin"
        again = hearth("up")
        assert again.returncode == 0 and "admin password" not in again.stdout
        assert "api: ready" in again.stdout  # already running: nothing restarted, still reported
    finally:
        hearth("down")
    assert not list((tmp_path / "var" / "run").glob("*.pid"))
