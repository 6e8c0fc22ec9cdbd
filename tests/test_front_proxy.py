"""The front end as a real process in front of real upstreams on loopback and a Unix socket.

The upstream is a tiny aiohttp app written here (UPSTREAM): it echoes what it
received, counts and checksums uploads, streams downloads, echoes WebSocket
messages and remembers close codes. Nothing is mocked: every assertion is about
bytes that crossed two real sockets.
"""
from __future__ import annotations

import asyncio
import base64
import gzip
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import aiohttp
import pytest

from tests.installation import free_port, http_get

GIB = 1024 ** 3
CHUNK = 1024 * 1024
RSS_LIMIT_KB = 100 * 1024

UPSTREAM = r'''
import asyncio, json, sys, zlib
from aiohttp import web, WSMsgType

CHUNK = 1024 * 1024
STATE = {"seen": [], "download": None, "ws_close": None}


def pattern(index, base=bytes(range(256)) * (CHUNK // 256)):
    block = bytearray(base)
    block[:8] = index.to_bytes(8, "big")
    return bytes(block)


async def echo(request):
    STATE["seen"].append([request.method, request.raw_path])
    size, crc = 0, 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        crc = zlib.crc32(chunk, crc)
    return web.json_response({
        "method": request.method, "raw_path": request.raw_path,
        "peer": request.transport.get_extra_info("peername"),
        "headers": [[k, v] for k, v in request.headers.items()], "bytes": size, "crc32": crc})


async def download(request):
    STATE["seen"].append([request.method, request.raw_path])
    size = int(request.query["size"])
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = size
    await response.prepare(request)
    sent, crc, index = 0, 0, 0
    while sent < size:
        chunk = pattern(index)[: size - sent]
        crc = zlib.crc32(chunk, crc)
        await response.write(chunk)
        sent += len(chunk)
        index += 1
    STATE["download"] = {"bytes": sent, "crc32": crc}
    await response.write_eof()
    return response


async def hop(request):
    return web.Response(text="hop", headers={
        "Connection": "X-Secret-Hop", "X-Secret-Hop": "1", "Keep-Alive": "timeout=5",
        "Proxy-Authenticate": "Basic", "X-Kept": "yes"})


async def slow(request):
    await asyncio.sleep(float(request.query.get("seconds", "3")))
    return web.Response(text="late")


async def ws(request):
    socket = web.WebSocketResponse(protocols=("echo.v1",))
    await socket.prepare(request)
    async for msg in socket:
        if msg.type == WSMsgType.TEXT and msg.data.startswith("close:"):
            _, code, text = msg.data.split(":", 2)
            await socket.close(code=int(code), message=text.encode())
        elif msg.type == WSMsgType.TEXT:
            await socket.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await socket.send_bytes(msg.data)
    STATE["ws_close"] = socket.close_code
    return socket


async def state(request):
    return web.json_response(STATE)


app = web.Application(client_max_size=0)
app.router.add_get("/download", download)
app.router.add_get("/hop", hop)
app.router.add_get("/slow", slow)
app.router.add_get("/ws", ws)
app.router.add_get("/_state", state)
app.router.add_route("*", "/{tail:.*}", echo)
where = sys.argv[1]
if where.startswith("unix:"):
    web.run_app(app, path=where[5:], print=None, access_log=None)
else:
    web.run_app(app, host="127.0.0.1", port=int(where), print=None, access_log=None)
'''


def pattern(index: int, base: bytes = bytes(range(256)) * (CHUNK // 256)) -> bytes:
    block = bytearray(base)
    block[:8] = index.to_bytes(8, "big")
    return bytes(block)


def wait_until(check, what: str, timeout: float = 20.0, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: process exited with {process.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def accepts(path: Path) -> bool:
    """Whether a connection to the Unix socket at `path` is accepted."""
    with socket.socket(socket.AF_UNIX) as probe:
        probe.connect(str(path))
    return True


class Setup:
    """An upstream on TCP, the same app on a Unix socket, and the front end routing to both."""

    def __init__(self, root: Path):
        self.root = root
        self.tcp_port, self.front_port = free_port(), free_port()
        self.socket = root / "var" / "run" / "up.sock"
        self.socket.parent.mkdir(parents=True)
        self.refused_port = free_port()  # nothing listens there
        script = root / "upstream.py"
        script.write_text(UPSTREAM)
        self.processes: list[subprocess.Popen] = []
        for where in (str(self.tcp_port), f"unix:{self.socket}"):
            self.processes.append(subprocess.Popen([sys.executable, str(script), where], cwd=root,
                                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.config = root / "hearth.toml"
        self.config.write_text(textwrap.dedent(f"""\
            data_dir = "var"
            [front]
            listen = "127.0.0.1:{self.front_port}"
            trusted_proxies = ["127.0.0.2"]
            idle_timeout = 1.5
            connect_timeout = 2.0
            rate_limit = 0.0

            [[route]]
            path = "/unix/"
            upstream = "unix:run/up.sock"
            strip_prefix = true

            [[route]]
            path = "/small/"
            upstream = "127.0.0.1:{self.tcp_port}"
            max_body_kb = 1

            [[route]]
            path = "/refused/"
            upstream = "127.0.0.1:{self.refused_port}"

            [[route]]
            path = "/tcp/"
            upstream = "127.0.0.1:{self.tcp_port}"
            strip_prefix = true
            cors = {{ origins = ["https://app.example.org"], methods = ["GET", "PUT"] }}
            """))
        self.stderr_path = root / "front.stderr"
        self.stderr = open(self.stderr_path, "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        self.front = subprocess.Popen([sys.executable, "-m", "services.front", "--config", str(self.config)],
                                      cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=self.stderr)
        self.processes.append(self.front)
        wait_until(lambda: self.get_direct("/_state")[0] == 200, "the TCP upstream")
        wait_until(lambda: accepts(self.socket), "the Unix upstream")  # bound is not yet listening
        wait_until(lambda: self.request("GET", "/healthz")[0] == 200, "the front end", process=self.front)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.front_port}"

    def request(self, method: str, path: str, headers: dict | list | None = None, body: bytes | None = None,
                source: str | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request with exactly these headers (http.client adds only Host and Content-Length)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.front_port, timeout=10,
                                                source_address=(source, 0) if source else None)
        try:
            items = list(headers.items() if isinstance(headers, dict) else headers or [])
            connection.putrequest(method, path, skip_accept_encoding=True,
                                  skip_host=any(name.lower() == "host" for name, _ in items))
            for name, value in items:
                connection.putheader(name, value)
            if body is not None:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def get_direct(self, path: str) -> tuple[int, bytes]:
        return http_get(self.tcp_port, path)

    def upstream_state(self) -> dict:
        return json.loads(self.get_direct("/_state")[1])

    def front_rss_kb(self) -> dict[str, int]:
        fields = {}
        for line in Path(f"/proc/{self.front.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(value.split()[0])
        return fields

    def close(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.stderr.close()


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    setup = Setup(tmp_path_factory.mktemp("front"))
    yield setup
    setup.close()
    log = setup.stderr_path.read_text()
    assert setup.front.returncode == 0, log
    # Clients hanging up, upstreams failing, bodies refused: all expected, none an error.
    assert " ERROR " not in log and "Traceback" not in log, log


def echoed(body: bytes) -> tuple[dict, dict]:
    data = json.loads(body)
    return data, {name.lower(): value for name, value in data["headers"]}


# --- headers -----------------------------------------------------------------------

SPOOFED = [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "evil.example"),
           ("Forwarded", "for=6.6.6.6"), ("X-Real-IP", "6.6.6.6")]


def test_hop_by_hop_headers_are_stripped_both_ways(front):
    status, headers, body = front.request("GET", "/tcp/echo?x=%2F", [
        ("Connection", "keep-alive, X-Custom-Hop"), ("X-Custom-Hop", "secret"), ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"), ("Proxy-Authorization", "Basic eDp5"), ("Proxy-Connection", "keep-alive"),
        ("Upgrade", "h2c"), ("X-Kept", "yes"), ("Authorization", "Basic YTpi"), ("Cookie", "a=1")])
    assert status == 200
    data, seen = echoed(body)
    assert data["raw_path"] == "/echo?x=%2F"  # prefix stripped, the rest byte for byte
    for name in ("x-custom-hop", "keep-alive", "te", "proxy-authorization", "proxy-connection", "upgrade"):
        assert name not in seen, name
    assert seen["x-kept"] == "yes" and seen["authorization"] == "Basic YTpi" and seen["cookie"] == "a=1"
    assert seen["host"] == f"127.0.0.1:{front.front_port}"  # the client's Host, not the upstream's

    status, headers, body = front.request("GET", "/tcp/hop")
    assert status == 200 and body == b"hop"
    assert headers["X-Kept"] == "yes"
    for name in ("X-Secret-Hop", "Keep-Alive", "Proxy-Authenticate"):
        assert name not in headers, name


def test_upstream_connections_are_kept_alive_and_bodies_pass_untouched(front):
    peers = {tuple(echoed(front.request("GET", "/tcp/echo")[2])[0]["peer"]) for _ in range(5)}
    assert len(peers) == 1, peers  # five requests, one pooled connection to the upstream
    text = b"so compressible " * 1000
    status, _, body = front.request("POST", "/tcp/echo", [("Content-Encoding", "gzip")], body=gzip.compress(text))
    data, seen = echoed(body)
    # The upstream got the gzip stream as sent (and decompressed it itself).
    assert status == 200 and seen["content-encoding"] == "gzip"
    assert (data["bytes"], data["crc32"]) == (len(text), zlib.crc32(text))


def test_forwarded_headers_from_an_untrusted_peer_are_replaced(front):
    status, _, body = front.request("GET", "/tcp/echo", SPOOFED + [("Host", "door.example.org")])
    assert status == 200
    _, seen = echoed(body)
    assert seen["x-forwarded-for"] == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "door.example.org"
    assert "forwarded" not in seen and "x-real-ip" not in seen


def test_forwarded_headers_from_a_trusted_proxy_are_believed(front):
    status, _, body = front.request("GET", "/tcp/echo", [
        ("X-Forwarded-For", "6.6.6.6, 203.0.113.9"), ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "home.example.org")], source="127.0.0.2")
    assert status == 200
    _, seen = echoed(body)
    # The right-most untrusted hop is the client; what it claims about others is dropped.
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.2"
    assert seen["x-forwarded-proto"] == "https" and seen["x-forwarded-host"] == "home.example.org"

    _, _, body = front.request("GET", "/tcp/echo", [("X-Forwarded-For", "203.0.113.9, 127.0.0.3")],
                               source="127.0.0.2")
    assert echoed(body)[1]["x-forwarded-for"] == "127.0.0.3, 127.0.0.2"  # 127.0.0.3 is not trusted


# --- answers of the door itself -----------------------------------------------------

def test_what_no_route_takes_goes_to_the_web_ui(front):
    status, headers, body = front.request("GET", "/nowhere/x")  # the API daemon serves the web UI
    assert status == 502 and json.loads(body)["reason"].startswith("api is not running")


def test_redirects(front):
    status, headers, _ = front.request("GET", "/.well-known/caldav")
    assert (status, headers["Location"]) == (301, "/dav/")
    status, headers, _ = front.request("PROPFIND", "/.well-known/carddav")
    assert (status, headers["Location"]) == (301, "/dav/")
    status, headers, _ = front.request("POST", "/tcp?a=1", body=b"x")
    assert (status, headers["Location"]) == (308, "/tcp/?a=1")


def test_the_nextcloud_apps_dav_addresses_lead_to_their_dav_twins(front):
    for root in ("/remote.php/dav/", "/remote.php/dav"):   # DAVx⁵'s Nextcloud login asks without the slash
        status, headers, _ = front.request("PROPFIND", root)
        assert (status, headers["Location"]) == (308, "/dav/"), root
    status, headers, _ = front.request("REPORT", "/remote.php/dav/calendars/ann/caf%C3%A9/?x=1", body=b"<r/>")
    assert (status, headers["Location"]) == (308, "/dav/calendars/ann/caf%C3%A9/?x=1")
    status, headers, _ = front.request("PROPFIND", "/remote.php/dav/principals")
    assert (status, headers["Location"]) == (308, "/remote.php/dav/principals/")  # the slash first, then /dav/
    status, headers, _ = front.request("GET", "/remote.php/dav/addressbooks/ann/contacts/a.vcf")
    assert (status, headers["Location"]) == (308, "/dav/addressbooks/ann/contacts/a.vcf")


def test_preflight_is_answered_at_the_door(front):
    before = len(front.upstream_state()["seen"])
    status, headers, _ = front.request("OPTIONS", "/tcp/echo", [
        ("Origin", "https://app.example.org"), ("Access-Control-Request-Method", "PUT")])
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "https://app.example.org"
    status, headers, _ = front.request("GET", "/tcp/echo", [("Origin", "https://app.example.org")])
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.example.org"
    assert "Origin" in headers["Vary"]
    assert headers["X-Content-Type-Options"] == "nosniff"  # security headers on proxied answers
    assert [m for m, _ in front.upstream_state()["seen"][before:]] == ["GET"]  # the OPTIONS never got there


def test_unreachable_upstreams_fail_fast_with_a_reason(front):
    started = time.monotonic()
    status, headers, body = front.request("GET", "/refused/x")
    assert status == 502 and time.monotonic() - started < 2.0
    assert json.loads(body)["reason"] == f"cannot reach 127.0.0.1:{front.refused_port}: connection refused"
    status, headers, body = front.request("GET", "/files/alice/")  # installed (rc.d/hearth_files), not running
    assert status == 502 and "Retry-After" not in headers
    assert json.loads(body)["reason"].startswith("files is not running")
    status, _, body = front.request("GET", "/sync/v1/folders")  # installed (rc.d/hearth_sync), not running here
    assert status == 502 and json.loads(body)["reason"].startswith("sync is not running")
    status, _, body = front.request("GET", "/api/v1/me")  # nothing supervises an api in this setup
    assert status == 502 and json.loads(body)["reason"].startswith("api is not running")


def test_a_silent_upstream_gets_504_after_idle_timeout(front):
    started = time.monotonic()
    status, _, body = front.request("GET", "/tcp/slow?seconds=4")
    elapsed = time.monotonic() - started
    assert status == 504 and 1.4 < elapsed < 3.0, elapsed
    assert json.loads(body)["reason"] == "127.0.0.1:%d sent no answer within 1.5 s" % front.tcp_port


def test_body_limit_refuses_before_and_while_streaming(front):
    before = len(front.upstream_state()["seen"])
    status, headers, body = front.request("POST", "/small/echo", body=b"x" * 2048)
    assert status == 413 and json.loads(body)["reason"] == "request body over the limit of 1 KiB for this route"
    assert headers["Connection"] == "close"
    status, _, body = front.request("POST", "/small/echo", body=b"x" * 1024)
    assert status == 200 and json.loads(body)["bytes"] == 1024
    assert len(front.upstream_state()["seen"]) == before + 1  # the first never reached the upstream

    async def chunked() -> int:
        async def body():
            for _ in range(4):
                yield b"y" * 1000
        async with aiohttp.ClientSession() as session:
            async with session.post(front.url + "/small/echo", data=body()) as response:  # chunked
                return response.status
    assert asyncio.run(chunked()) == 413


def raw_exchange(port: int, data: bytes) -> tuple[bytes, float]:
    """Send raw bytes, read the answer until the front closes; returns it and the seconds taken."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer, time.monotonic() - started


def test_a_client_that_stops_sending_its_body_gets_408_not_a_hang(front):
    answer, elapsed = raw_exchange(front.front_port, b"PUT /unix/upload HTTP/1.1\r\nHost: x\r\n"
                                   b"Content-Length: 1000\r\n\r\n" + b"z" * 10)
    assert answer.startswith(b"HTTP/1.1 408 ") and b"no request body bytes for 1.5 s" in answer
    assert 1.4 < elapsed < 4.0, elapsed


def test_access_log_is_combined_format_plus_duration_and_upstream(front):
    auth = "Basic " + base64.b64encode(b"ann:secret").decode()
    front.request("GET", "/tcp/echo?q=\"1\"", [("User-Agent", "probe/1.0"), ("Referer", "https://r.example/"),
                                               ("Authorization", auth)])
    front.request("GET", "/.well-known/caldav", [("User-Agent", "probe/2.0")])  # answered by the door itself
    pattern = re.compile(
        r'^(?P<client>\S+) - (?P<user>\S+) \[(?P<time>\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
        r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)" '
        r'(?P<duration>\d+\.\d{3}) (?P<upstream>\S+)$')

    def lines():
        text = front.stderr_path.read_text()
        return [m for m in map(pattern.match, text.splitlines()) if m and m["agent"].startswith("probe/")]
    wait_until(lambda: len(lines()) >= 2, "two access log lines")
    first, second = lines()[-2:]
    assert first["client"] == "127.0.0.1" and first["user"] == "ann"
    assert first["request"] == r"GET /tcp/echo?q=\x221\x22 HTTP/1.1"  # quotes escaped, as nginx does
    assert (first["status"], first["referer"], first["upstream"]) == ("200", "https://r.example/",
                                                                       f"127.0.0.1:{front.tcp_port}")
    assert int(first["bytes"]) > 0 and float(first["duration"]) < 5
    assert (second["status"], second["user"], second["upstream"], second["agent"]) == ("301", "-", "-", "probe/2.0")


# --- streaming ---------------------------------------------------------------------

async def upload(url: str, size: int) -> tuple[int, dict, int]:
    crc = 0

    async def body():
        nonlocal crc
        for index in range(size // CHUNK):
            chunk = pattern(index)
            crc = zlib.crc32(chunk, crc)
            yield chunk

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as session:
        async with session.put(url, data=body(), headers={"Content-Length": str(size)}) as response:
            return response.status, await response.json(), crc


async def download(url: str) -> tuple[int, int, int]:
    size = crc = 0
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300), auto_decompress=False) as session:
        async with session.get(url) as response:
            async for chunk in response.content.iter_chunked(CHUNK):
                size += len(chunk)
                crc = zlib.crc32(chunk, crc)
            return response.status, size, crc


def test_1_gib_upload_streams_without_buffering(front):
    started = time.monotonic()
    status, received, crc = asyncio.run(upload(front.url + "/unix/upload", GIB))
    elapsed = time.monotonic() - started
    rss = front.front_rss_kb()
    print(f"\n1 GiB upload through the front: {GIB / elapsed / 1e6:.0f} MB/s, front VmHWM {rss['VmHWM'] / 1024:.1f} "
          f"MB, VmRSS {rss['VmRSS'] / 1024:.1f} MB")
    assert status == 200 and received["bytes"] == GIB and received["crc32"] == crc
    assert rss["VmHWM"] < RSS_LIMIT_KB, rss


def test_1_gib_download_streams_without_buffering(front):
    started = time.monotonic()
    status, size, crc = asyncio.run(download(front.url + f"/unix/download?size={GIB}"))
    elapsed = time.monotonic() - started
    rss = front.front_rss_kb()
    print(f"\n1 GiB download through the front: {GIB / elapsed / 1e6:.0f} MB/s, front VmHWM "
          f"{rss['VmHWM'] / 1024:.1f} MB, VmRSS {rss['VmRSS'] / 1024:.1f} MB")
    sent = json.loads(front.request("GET", "/unix/_state")[2])["download"]
    assert status == 200 and size == GIB == sent["bytes"] and crc == sent["crc32"]
    assert rss["VmHWM"] < RSS_LIMIT_KB, rss


# --- WebSocket -----------------------------------------------------------------------

async def websocket_session(url: str) -> dict:
    result: dict = {}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, protocols=("other", "echo.v1")) as ws:
            result["protocol"] = ws.protocol
            await ws.send_str("hello")
            result["text"] = (await ws.receive(timeout=5)).data
            await ws.send_bytes(b"\x00\xffbinary")
            result["binary"] = (await ws.receive(timeout=5)).data
            await ws.send_str("close:4001:upstream says bye")
            closing = await ws.receive(timeout=5)
            result["upstream_close"] = (closing.type, closing.data, closing.extra)
        async with session.ws_connect(url) as ws:
            await ws.send_str("ping")
            assert (await ws.receive(timeout=5)).data == "ping"
            await ws.close(code=4002, message=b"client says bye")
    return result


def test_websocket_echo_and_close_codes_pass_through(front):
    result = asyncio.run(websocket_session(front.url.replace("http", "ws") + "/tcp/ws"))
    assert result["protocol"] == "echo.v1"
    assert result["text"] == "hello" and result["binary"] == b"\x00\xffbinary"
    assert result["upstream_close"] == (aiohttp.WSMsgType.CLOSE, 4001, "upstream says bye")
    wait_until(lambda: front.upstream_state()["ws_close"] == 4002, "the client's close code upstream")


# --- startup -------------------------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ('[[route]]\nupstream = "nowhere"\n', "[[route]] #1: upstream: expected HOST:PORT or unix:PATH, got 'nowhere'"),
    ('[api]\nlisten = "127.0.0.1:8080"\n', "[api] listen and [front] listen are both 127.0.0.1:8080"),
    ('[front]\ntls_cert = "cert.pem"\n', "[front] tls_cert and tls_key go together"),
    ('[front]\nlisten = "8080"\n', "[front] listen: expected HOST:PORT or unix:PATH, got '8080'"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, text, message):
    (tmp_path / "hearth.toml").write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    done = subprocess.run([sys.executable, "-m", "services.front", "--config", str(tmp_path / "hearth.toml")],
                          capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 2
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("hearth-front: ")
    assert message in done.stderr, done.stderr
