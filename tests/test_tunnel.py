"""The tunnel end to end on loopback: relay, agent, front end (TLS) and the API, each its own process.

A phone is played by this test: it connects from 127.0.0.2 to the relay's
public port, speaks TLS with SNI home.test and trusts only the home's CA
(trustme). The relay may only see ciphertext: its byte tap (HEARTH_RELAY_TAP)
records every byte it passes, and the test's plaintext marker must never be
in it. The front end must log the phone's address, which it only learns from
the agent's PROXY v2 header.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from services.core.proxy_protocol import proxy_v2_header
from services.tunnel.agent_state import describe, read_agent_state
from services.tunnel.relay_trust import matches_pin, subject_public_key_info
from tests.installation import free_port, http_get, listening

pytestmark = pytest.mark.timeout(180)

SITE = "home.test"
PHONE = "127.0.0.2"   # the public client: any loopback address but the agent's 127.0.0.1
SECRET = "0123456789abcdef-home-agent-secret"
SLOW_CHUNKS, SLOW_CHUNK, SLOW_GAP = 16, 64 * 1024, 0.25


# -- the upstream behind the front end: echoes a marker, streams slowly ---------------------------

def start_upstream(port: int) -> None:
    """Serve the upstream from a thread; returns once its socket is bound."""
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"echo {request.headers.get('X-Marker', '')} from "
                                 f"{request.headers.get('X-Forwarded-For', '')}",
                            headers={"X-Seen-Proto": request.headers.get("X-Forwarded-Proto", "")})

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = SLOW_CHUNKS * SLOW_CHUNK
        await response.prepare(request)
        for _ in range(SLOW_CHUNKS):
            await response.write(b"s" * SLOW_CHUNK)
            await asyncio.sleep(SLOW_GAP)
        return response

    bound = threading.Event()

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/echo", echo)
        app.router.add_get("/slow", slow)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        bound.set()
        await asyncio.Event().wait()

    threading.Thread(target=lambda: asyncio.run(main()), daemon=True).start()
    assert bound.wait(timeout=20), "the upstream did not bind"


# -- processes -------------------------------------------------------------------------------

class Process:
    def __init__(self, name: str, argv: list[str], cwd: Path, env: dict):
        self.name, self.argv, self.cwd, self.env = name, argv, cwd, env
        self.log_path = cwd / f"{name}.stderr"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Process":
        self.stderr = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.argv, cwd=self.cwd, env=self.env, stdout=subprocess.DEVNULL,
                                        stderr=self.stderr)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=15)
        self.stderr.close()
        return code


def wait_until(what: str, check, timeout: float = 20, process: Process | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            assert process.process.poll() is None, f"{process.name} exited: {process.log()}"
        try:
            result = check()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}" + (f": {process.log()}" if process else ""))


class Topology:
    """relay (public side) + API, front end and agent (home side), all on loopback."""

    def __init__(self, root: Path, *, sites: tuple[str, ...] = (SITE,), max_streams: int = 64,
                 idle_timeout: float = 30.0, max_unrouted: int = 1024, relay_extra: str = ""):
        """`sites` are the hostnames the agent serves; `relay_extra` is appended to relay.toml (tables)."""
        self.root = root
        self.home, self.public = root / "home", root / "public"
        self.home.mkdir()
        self.public.mkdir()
        self.ports = {name: free_port() for name in ("api", "front", "proxied", "upstream", "control",
                                                     "public", "http", "status")}
        self.tap = self.public / "tap.bin"
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        self.env = env

        self.home_ca, relay_ca = trustme.CA(), trustme.CA()
        site = self.home_ca.issue_cert(SITE)
        site.cert_chain_pems[0].write_to_path(str(self.home / "site.pem"))
        for blob in site.cert_chain_pems[1:]:
            blob.write_to_path(str(self.home / "site.pem"), append=True)
        site.private_key_pem.write_to_path(str(self.home / "site.key"))
        relay_cert = relay_ca.issue_cert("relay.test")
        relay_cert.cert_chain_pems[0].write_to_path(str(self.public / "relay.pem"))
        relay_cert.private_key_pem.write_to_path(str(self.public / "relay.key"))
        relay_ca.cert_pem.write_to_path(str(self.home / "relay-ca.pem"))
        self.relay_cert_der = ssl.PEM_cert_to_DER_cert(relay_cert.cert_chain_pems[0].bytes().decode())
        (self.home / "agent.secret").write_text(SECRET + "\n")
        (self.public / "home.secret").write_text(SECRET + "\n")
        (self.public / "home.secret.next").write_text("a-second-secret-being-rotated-in\n")

        p = self.ports
        (self.home / "hearth.toml").write_text(f'''data_dir = "var"
[api]
listen = "127.0.0.1:{p['api']}"
[front]
listen = "127.0.0.1:{p['front']}"
tls_cert = "site.pem"
tls_key = "site.key"
proxy_protocol_listen = "127.0.0.1:{p['proxied']}"
[tunnel]
relay = "127.0.0.1:{p['control']}"
name = "home"
secret_file = "agent.secret"
relay_ca = "relay-ca.pem"
relay_name = "relay.test"
hostnames = {json.dumps(list(sites))}
pool_size = 4
backoff_max = 2.0

[[route]]
path = "/up/"
upstream = "127.0.0.1:{p['upstream']}"
strip_prefix = true
''')
        (self.public / "relay.toml").write_text(f'''public_listen = "127.0.0.1:{p['public']}"
http_listen = "127.0.0.1:{p['http']}"
control_listen = "127.0.0.1:{p['control']}"
status_listen = "127.0.0.1:{p['status']}"
tls_cert = "relay.pem"
tls_key = "relay.key"
hello_timeout = 2.0
idle_timeout = {idle_timeout}
max_unrouted = {max_unrouted}

[agents.home]
secret_files = ["home.secret", "home.secret.next"]
hostnames = {json.dumps(list(sites))}
max_streams = {max_streams}
{relay_extra}''')
        config = ["--config", str(self.home / "hearth.toml")]
        self.api = Process("api", [sys.executable, "-m", "services.api", *config], self.home, env)
        self.front = Process("front", [sys.executable, "-m", "services.front", *config], self.home, env)
        self.agent = Process("agent", [sys.executable, "-m", "services.tunnel", *config], self.home, env)
        self.relay = Process("relay", [sys.executable, "-m", "services.cli", "relay", "--config",
                                       str(self.public / "relay.toml")], self.public,
                             {**env, "HEARTH_RELAY_TAP": str(self.tap)})

    def __enter__(self) -> "Topology":
        """Started; every process stopped again on leaving, or if starting fails half-way."""
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        start_upstream(self.ports["upstream"])
        self.api.start()
        self.front.start()
        # Each thing the tests use, waited for itself: the front's /healthz does not count an
        # API no supervisor runs, nor the route's own upstream (hearth cannot know it is meant to be up).
        wait_until("the API", lambda: http_get(self.ports["api"], "/healthz")[0] == 200, process=self.api)
        wait_until("the front end", lambda: self.front_health() == 200, process=self.front)
        wait_until("the front's PROXY-protocol port", lambda: listening(self.ports["proxied"]), process=self.front)
        self.start_relay()
        self.agent.start()
        wait_until("the agent to connect", lambda: self.agent_state().get("state") == "connected",
                   process=self.agent)
        wait_until("the relay to see the agent", lambda: self.status()["agents"]["home"]["idle_connections"] >= 1)

    def start_relay(self) -> None:
        self.relay.start()
        wait_until("the relay", lambda: self.status() is not None, process=self.relay)

    def stop(self) -> None:
        for process in (self.agent, self.relay, self.front, self.api):
            if process.process is not None and process.process.poll() is None:
                process.stop()

    def front_health(self) -> int:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        with urllib.request.urlopen(f"https://127.0.0.1:{self.ports['front']}/healthz", context=context,
                                    timeout=2) as response:
            return response.status

    def status(self) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ports['status']}/", timeout=2) as response:
                return json.load(response)
        except OSError:
            return None

    def agent_state(self) -> dict:
        return read_agent_state(self.home / "var") or {}

    def phone_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self.home_ca.configure_trust(context)
        return context


async def phone_get(topology: Topology, path: str, headers: dict | None = None, sni: str = SITE,
                    read_delay: float = 0.0, timeout: float = 20,
                    context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """GET over TLS from the phone's address through the relay's public port: (status, body)."""
    sock = socket.socket()
    sock.bind((PHONE, 0))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", topology.ports["public"]))
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(sock=sock, ssl=context or topology.phone_context(),
                                                       server_hostname=sni)
        lines = [f"GET {path} HTTP/1.1", f"Host: {sni}", "Connection: close",
                 *(f"{k}: {v}" for k, v in (headers or {}).items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        data = bytearray()
        while chunk := await reader.read(16 * 1024):
            data += chunk
            if read_delay:
                await asyncio.sleep(read_delay)
        writer.close()
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def open_streams(topology: Topology) -> int:
    """Phone connections the relay is passing to the agent right now."""
    return topology.status()["agents"]["home"]["open_streams"]


def run(coroutine):
    return asyncio.run(coroutine)


@pytest.fixture(scope="module")
def topology(tmp_path_factory):
    with Topology(tmp_path_factory.mktemp("tunnel")) as topology:
        yield topology


# -- the tests -------------------------------------------------------------------------------

def test_https_through_relay_and_agent_reaches_the_api_and_the_relay_sees_no_plaintext(topology):
    marker = "plaintext-marker-" + base64.b32encode(os.urandom(10)).decode()
    tapped_before = topology.tap.stat().st_size if topology.tap.exists() else 0

    status, body = run(phone_get(topology, "/api/openapi.json"))
    assert status == 200 and json.loads(body)["openapi"].startswith("3.")
    status, body = run(phone_get(topology, "/up/echo", headers={"X-Marker": marker}))
    assert status == 200 and body.decode() == f"echo {marker} from {PHONE}"

    tapped = topology.tap.read_bytes()[tapped_before:]
    assert len(tapped) > 2000                     # two TLS exchanges went through the relay…
    assert marker.encode() not in tapped          # …and not one of them in the clear
    assert b"openapi" not in tapped and b"GET /" not in tapped
    agent = topology.status()["agents"]["home"]
    assert agent["connected"] and agent["hostnames"] == [SITE]
    assert agent["bytes_in"] + agent["bytes_out"] >= len(tapped)
    # The front end learnt the phone's address from the agent's PROXY header, not the agent's own.
    access = [line for line in topology.front.log().splitlines() if "/up/echo" in line]
    assert access and access[-1].startswith(f"{PHONE} - "), access


def test_a_small_request_is_not_held_up_by_ten_slow_downloads(topology):
    async def scenario() -> tuple[float, list[float]]:
        async def slow() -> float:
            started = time.monotonic()
            status, body = await phone_get(topology, "/up/slow", read_delay=0.02, timeout=60)
            assert status == 200 and len(body) == SLOW_CHUNKS * SLOW_CHUNK
            return time.monotonic() - started

        slow_tasks = [asyncio.create_task(slow()) for _ in range(10)]
        await asyncio.to_thread(wait_until, "all ten downloads to hold a stream", lambda: open_streams(topology) >= 10)
        assert not any(task.done() for task in slow_tasks)
        started = time.monotonic()
        status, body = await phone_get(topology, "/up/echo", headers={"X-Marker": "small"})
        small = time.monotonic() - started
        assert status == 200 and body.startswith(b"echo small")
        return small, await asyncio.gather(*slow_tasks)

    small, slow = run(scenario())
    print(f"small request {small * 1000:.0f} ms; slow downloads {min(slow):.2f}-{max(slow):.2f} s")
    assert min(slow) > SLOW_CHUNKS * SLOW_GAP * 0.8   # the slow ones really were slow…
    assert small < 0.5, f"small request took {small:.3f} s behind {len(slow)} slow downloads"


def closed_by_peer(raw: socket.socket) -> bool:
    """Whether the peer hung up (a close with our bytes unread arrives as a reset)."""
    try:
        return raw.recv(100) == b""
    except ConnectionResetError:
        return True


def count_lines(process: Process, text: str) -> int:
    return sum(1 for line in process.log().splitlines() if text in line)


def test_bad_secret_unknown_sni_and_garbage_are_each_refused_and_logged_once(topology):
    # A bad agent secret: the relay answers no, and says so once in its log.
    context = ssl.create_default_context(cafile=str(topology.home / "relay-ca.pem"))
    with socket.create_connection(("127.0.0.1", topology.ports["control"]), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="relay.test") as tls:
            tls.sendall(json.dumps({"agent": "home", "secret": "not-the-secret-at-all!",
                                    "hostnames": [SITE]}).encode() + b"\n")
            answer = json.loads(tls.makefile("rb").readline())
    assert answer["ok"] is False
    # A good secret for a name that is not this agent's: refused too.
    with socket.create_connection(("127.0.0.1", topology.ports["control"]), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="relay.test") as tls:
            tls.sendall(json.dumps({"agent": "home", "secret": SECRET, "hostnames": ["bank.test"]}).encode()
                        + b"\n")
            assert json.loads(tls.makefile("rb").readline())["ok"] is False

    # An unknown SNI: the phone's handshake is cut.
    with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError, OSError)):
        run(phone_get(topology, "/", sni="unknown.test", timeout=5))
    # Garbage instead of a ClientHello.
    with socket.create_connection(("127.0.0.1", topology.ports["public"]), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: home.test\r\n\r\n")
        assert closed_by_peer(raw)
    # A ClientHello that never comes.
    with socket.create_connection(("127.0.0.1", topology.ports["public"]), timeout=5) as raw:
        raw.sendall(b"\x16\x03\x01")
        started = time.monotonic()
        assert closed_by_peer(raw)
        assert time.monotonic() - started < 4

    wait_until("the relay's log lines", lambda: count_lines(topology.relay, "within 2 s") == 1)
    relay = topology.relay
    assert count_lines(relay, "unknown agent or wrong secret") == 1, relay.log()
    assert count_lines(relay, "may not serve bank.test") == 1, relay.log()
    assert count_lines(relay, "no agent serves 'unknown.test'") == 1, relay.log()
    assert count_lines(relay, "not a TLS handshake record") == 1, relay.log()
    assert relay.process.poll() is None

    status, body = run(phone_get(topology, "/up/echo", headers={"X-Marker": "after"}))
    assert status == 200 and body.startswith(b"echo after")
    refused = topology.status()["refused"]
    assert refused["agent"] >= 2 and refused["sni"] >= 1 and refused["garbage"] >= 1 and refused["slow"] >= 1


def test_http_listener_redirects_known_hosts_to_https(topology):
    request = urllib.request.Request(f"http://127.0.0.1:{topology.ports['http']}/api/x?y=1",
                                     headers={"Host": SITE}, method="GET")

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(request, timeout=5)
    assert caught.value.code == 308 and caught.value.headers["Location"] == f"https://{SITE}/api/x?y=1"
    request = urllib.request.Request(f"http://127.0.0.1:{topology.ports['http']}/", headers={"Host": "else.test"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        opener.open(request, timeout=5)
    assert caught.value.code == 421


def test_front_refuses_a_connection_without_a_proxy_header(topology):
    with socket.create_connection(("127.0.0.1", topology.ports["proxied"]), timeout=5) as raw:
        raw.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert closed_by_peer(raw)
    wait_until("the front's log line", lambda: count_lines(topology.front, "no PROXY protocol v2 signature") == 1)
    # With a header, a plain-HTTP-speaking client gets nowhere either: the listener speaks TLS.
    context = ssl.create_default_context()
    topology.home_ca.configure_trust(context)
    with socket.create_connection(("127.0.0.1", topology.ports["proxied"]), timeout=5) as raw:
        raw.sendall(proxy_v2_header(("198.51.100.7", 4711), ("127.0.0.1", 443)))
        with context.wrap_socket(raw, server_hostname=SITE) as tls:
            tls.sendall(f"GET /up/echo HTTP/1.1\r\nHost: {SITE}\r\nConnection: close\r\n\r\n".encode())
            reply = tls.makefile("rb").read()
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"from 198.51.100.7")


def test_killed_relay_comes_back_and_the_agent_reconnects(topology):
    async def interrupted_download() -> None:
        with pytest.raises((ConnectionError, OSError, ssl.SSLError, IndexError, AssertionError,
                            asyncio.IncompleteReadError)):
            task = asyncio.create_task(phone_get(topology, "/up/slow", timeout=30))
            await asyncio.to_thread(wait_until, "the download to hold a stream", lambda: open_streams(topology) >= 1)
            topology.relay.process.send_signal(signal.SIGKILL)
            status, body = await task
            assert len(body) == SLOW_CHUNKS * SLOW_CHUNK  # a cut transfer cannot be whole

    run(interrupted_download())
    topology.relay.stop()
    outage = wait_until("the agent to notice", lambda: topology.agent_state().get("state") == "reconnecting"
                        and topology.agent_state(), timeout=10, process=topology.agent)
    assert outage["last_error"]
    assert "reconnecting" in describe(outage)
    shown = subprocess.run([sys.executable, "-m", "services.cli", "--config", str(topology.home / "hearth.toml"),
                            "status"], capture_output=True, text=True, env=topology.env, timeout=30)
    assert "tunnel: reconnecting to 127.0.0.1:" in shown.stdout, shown.stdout + shown.stderr
    time.sleep(2.0)  # a relay that stays away a while: the agent keeps trying, with backoff
    topology.start_relay()
    back = time.monotonic()
    wait_until("the agent to reconnect", lambda: topology.agent_state().get("state") == "connected",
               timeout=10, process=topology.agent)
    assert time.monotonic() - back < 5
    status, body = run(phone_get(topology, "/up/echo", headers={"X-Marker": "back"}))
    assert status == 200 and body.startswith(b"echo back")


def test_relay_public_key_pin_matches_the_certificates_spki(topology):
    spki = x509.load_der_x509_certificate(topology.relay_cert_der).public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert subject_public_key_info(topology.relay_cert_der) == spki
    pin = "sha256/" + base64.b64encode(hashlib.sha256(spki).digest()).decode()
    assert matches_pin(topology.relay_cert_der, pin)
    assert not matches_pin(topology.relay_cert_der, "sha256/" + base64.b64encode(b"\0" * 32).decode())


def test_agent_without_a_relay_idles_and_counts_as_ready(tmp_path):
    from services.core.config import load_config
    from services.rc.readiness import tunnel_ready

    (tmp_path / "hearth.toml").write_text('data_dir = "var"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    agent = Process("agent", [sys.executable, "-m", "services.tunnel", "--config", str(tmp_path / "hearth.toml")],
                    tmp_path, env).start()
    config = load_config(tmp_path / "hearth.toml", environ={})
    wait_until("the disabled state", lambda: tunnel_ready(config, agent.process.pid), process=agent)
    assert read_agent_state(tmp_path / "var")["state"] == "disabled"
    assert not tunnel_ready(config, agent.process.pid + 1)  # a state file left by another process is not it
    agent.process.send_signal(signal.SIGHUP)
    time.sleep(0.3)
    assert agent.stop() == 0, agent.log()
    assert "nothing to reload" in agent.log()


@pytest.mark.parametrize("text, message", [
    ('[tunnel]\nrelay = "127.0.0.1:1"\n', "[front] proxy_protocol_listen"),
    ('[front]\nproxy_protocol_listen = "127.0.0.1:1"\n[tunnel]\nrelay = "127.0.0.1:1"\n', "[tunnel] hostnames"),
    ('[front]\nproxy_protocol_listen = "127.0.0.1:1"\n[tunnel]\nrelay = "127.0.0.1:1"\nhostnames = ["a.test"]\n'
     'secret_file = "missing"\n', "cannot read"),
])
def test_agent_misconfigured_is_one_line_and_exit_2(tmp_path, text, message):
    (tmp_path / "hearth.toml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    result = subprocess.run([sys.executable, "-m", "services.tunnel", "--config", str(tmp_path / "hearth.toml")],
                            capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


def test_front_refuses_a_proxy_listener_off_loopback(tmp_path):
    (tmp_path / "hearth.toml").write_text('[front]\nlisten = "127.0.0.1:1"\nproxy_protocol_listen = "0.0.0.0:8443"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    result = subprocess.run([sys.executable, "-m", "services.front", "--config", str(tmp_path / "hearth.toml")],
                            capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 2 and "loopback" in result.stderr, result.stderr


# -- the ClientHello reader, on real ClientHellos made by OpenSSL -------------------------------

def real_client_hello(server_name: str | None) -> bytes:
    context = ssl.create_default_context()
    if server_name is None:
        context.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def read_hello(data: bytes, max_bytes: int = 16384, eof: bool = True):
    from services.tunnel.clienthello import read_client_hello

    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        if eof:
            reader.feed_eof()
        return await read_client_hello(reader, max_bytes)

    return run(go())


def split_into_records(hello: bytes, size: int) -> bytes:
    """The same handshake message cut into TLS records of `size` bytes, as a client may send it."""
    body = hello[5:]
    return b"".join(hello[:3] + len(body[i:i + size]).to_bytes(2, "big") + body[i:i + size]
                    for i in range(0, len(body), size))


def test_client_hello_reader_finds_the_sni_and_keeps_every_byte():
    from services.tunnel.clienthello import NotAClientHello

    hello = real_client_hello("Home.Test")
    found = read_hello(hello + b"after")
    assert found.server_name == "home.test" and found.raw == hello   # nothing past the hello is consumed
    split = split_into_records(hello, 100)
    assert read_hello(split).server_name == "home.test" and read_hello(split).raw == split
    assert read_hello(real_client_hello(None)).server_name is None
    for bad, reason in ((b"GET / HTTP/1.1\r\n\r\n", "not a TLS handshake record"),
                        (hello[:-10], "closed inside"),
                        (b"\x16\x03\x01\x00\x00", "out of range"),
                        (b"\x16\x03\x01\x00\x05\x02\x00\x00\x01\x00", "not a ClientHello")):
        with pytest.raises(NotAClientHello, match=reason):
            read_hello(bad)
    with pytest.raises(NotAClientHello, match="bound|longer than"):
        read_hello(hello, max_bytes=len(hello) - 1)
    # Lengths that lie: a server_name extension claiming more than the message holds.
    plain = real_client_hello("home.test")
    index = plain.find(b"home.test")
    assert index > 0
    lying = bytearray(plain)
    lying[index - 2:index] = (4000).to_bytes(2, "big")
    with pytest.raises(NotAClientHello, match="past its end"):
        read_hello(bytes(lying))
