"""The door's limits: requests per second, header timeout, head size, connections per client.

The token bucket's arithmetic runs with a fake clock; everything a client can
do to a connection runs against a real `make_server` on a loopback socket,
spoken to byte by byte with asyncio streams. These tests also pin the aiohttp
internals protocol.py relies on: an aiohttp upgrade that breaks them fails here.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import time
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from services.core.config import load_config
from services.core.errors import TooManyRequests
from services.front.limits import ConnectionLimiter, RequestLimiter
from services.front.protocol import make_server

PROTOCOL_LOG = "front.protocol"


def front_config(tmp_path, **front):
    lines = ["[front]"] + [f"{key} = {value!r}".replace("'", '"') for key, value in front.items()]
    path = tmp_path / "hearth.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_config(path, environ={})


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


# the token bucket


def test_burst_then_429_with_retry_after_then_refill(tmp_path):
    clock = FakeClock()
    limiter = RequestLimiter(front_config(tmp_path, rate_limit=2.0, rate_burst=3), clock=clock)
    for _ in range(3):
        limiter.check("192.0.2.1")
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("192.0.2.1")
    assert refused.value.status == 429
    assert int(refused.value.headers["Retry-After"]) >= 1
    limiter.check("192.0.2.2")  # another client has its own bucket
    clock.now += 0.5            # 2 per second: one token back
    limiter.check("192.0.2.1")
    with pytest.raises(TooManyRequests):
        limiter.check("192.0.2.1")


def test_retry_after_is_long_enough_for_a_slow_rate(tmp_path):
    clock = FakeClock()
    limiter = RequestLimiter(front_config(tmp_path, rate_limit=0.1, rate_burst=1), clock=clock)
    limiter.check("192.0.2.1")
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("192.0.2.1")
    assert refused.value.headers["Retry-After"] == "10"
    clock.now += 10
    limiter.check("192.0.2.1")


def test_ipv6_clients_are_grouped_by_64(tmp_path):
    limiter = RequestLimiter(front_config(tmp_path, rate_limit=1.0, rate_burst=2), clock=FakeClock())
    limiter.check("2001:db8:1:2::1")
    limiter.check("2001:db8:1:2::ffff")
    with pytest.raises(TooManyRequests):
        limiter.check("2001:db8:1:2:aaaa::1")
    limiter.check("2001:db8:1:3::1")


def test_zero_rate_means_no_limit(tmp_path):
    limiter = RequestLimiter(front_config(tmp_path, rate_limit=0.0, rate_burst=1), clock=FakeClock())
    for _ in range(1000):
        limiter.check("192.0.2.1")
    assert len(limiter) == 0


def test_memory_is_bounded(tmp_path):
    clock = FakeClock()
    limiter = RequestLimiter(front_config(tmp_path, rate_limit=10.0, rate_burst=5), clock=clock,
                             max_clients=100)
    for n in range(1000):
        limiter.check(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) <= 100
    clock.now += 1  # every bucket has refilled: nothing left worth remembering
    limiter.check("192.0.2.1")
    assert len(limiter) == 1


BASIC_RIGHT = {"Authorization": "Basic YWxpY2U6cmlnaHQ="}
BASIC_WRONG = {"Authorization": "Basic YWxpY2U6Z3Vlc3M="}


def answered(limiter: RequestLimiter, address: str, headers: dict, status: int, confirmed: bool,
             cookies: dict | None = None) -> None:
    """One request through admit and settle, as the front end does it."""
    admission = limiter.admit(address, headers, cookies or {})
    admission.confirmed = confirmed
    limiter.settle(admission, status)


def test_confirmed_credentials_are_never_throttled_unconfirmed_ones_pay(tmp_path):
    clock = FakeClock()
    limiter = RequestLimiter(front_config(tmp_path, rate_limit=1.0, rate_burst=3), clock=clock)
    answered(limiter, "192.0.2.1", BASIC_RIGHT, 200, confirmed=True)  # taken, then given back
    for _ in range(3):
        answered(limiter, "192.0.2.1", {}, 200, confirmed=False)  # an anonymous neighbour behind the NAT
    with pytest.raises(TooManyRequests):
        limiter.admit("192.0.2.1", {}, {})
    for _ in range(5000):  # the household's own client goes on, bucket empty or not
        answered(limiter, "192.0.2.1", BASIC_RIGHT, 207, confirmed=True)
    with pytest.raises(TooManyRequests):  # made-up or wrong credentials pay like anonymous requests
        limiter.admit("192.0.2.1", BASIC_WRONG, {})

    for _ in range(3):  # a guesser elsewhere: every wrong password costs a token
        answered(limiter, "198.51.100.7", BASIC_WRONG, 401, confirmed=False)
    with pytest.raises(TooManyRequests) as refused:
        limiter.admit("198.51.100.7", BASIC_WRONG, {})
    assert int(refused.value.headers["Retry-After"]) >= 1

    # A session cookie counts as a credential too; a 401 (session ended, password changed) makes it unknown.
    cookie = {"hearth_session": "s3ssion"}
    answered(limiter, "203.0.113.5", {}, 200, confirmed=True, cookies=cookie)
    for _ in range(3):
        answered(limiter, "203.0.113.5", {}, 200, confirmed=False)
    answered(limiter, "203.0.113.5", {}, 200, confirmed=True, cookies=cookie)
    answered(limiter, "203.0.113.5", {}, 401, confirmed=False, cookies=cookie)
    with pytest.raises(TooManyRequests):
        limiter.admit("203.0.113.5", {}, cookie)


def test_known_credentials_are_bounded_and_expire(tmp_path):
    clock = FakeClock()
    limiter = RequestLimiter(front_config(tmp_path, rate_limit=1.0, rate_burst=1), clock=clock, max_credentials=10)
    for n in range(100):
        answered(limiter, f"10.0.0.{n}", {"Authorization": f"Bearer {n}"}, 200, confirmed=True)
    assert len(limiter._known) == 10
    answered(limiter, "192.0.2.9", BASIC_RIGHT, 200, confirmed=True)
    limiter.check("192.0.2.9")
    limiter.admit("192.0.2.9", BASIC_RIGHT, {})
    clock.now += limiter.credential_ttl + 1
    limiter.check("192.0.2.9")  # a fresh bucket after the long wait; emptied again
    with pytest.raises(TooManyRequests):
        limiter.admit("192.0.2.9", BASIC_RIGHT, {})  # not confirmed for an hour: it pays again


def test_body_limit(tmp_path):
    assert RequestLimiter(front_config(tmp_path, max_body_kb=0)).body_limit(None) is None
    limiter = RequestLimiter(front_config(tmp_path, max_body_kb=64))
    assert limiter.body_limit(None) == 64 * 1024
    assert limiter.body_limit(8) == 8 * 1024
    assert limiter.body_limit(0) is None


def test_connection_limiter_ignores_trusted_proxies():
    limiter = ConnectionLimiter(1, ["10.1.0.0/16", "::1"])
    assert limiter.open("10.1.2.3") is None
    assert limiter.open("::1") is None
    key, within = limiter.open("192.0.2.1")
    assert within
    assert limiter.open("192.0.2.1") == (key, False)
    limiter.close(key)
    limiter.close(key)
    assert len(limiter) == 0


# a real server


async def hello(request: web.BaseRequest) -> web.StreamResponse:
    await request.read()
    return web.Response(text="hello")


@asynccontextmanager
async def serving(config, handler=hello):
    runner = web.ServerRunner(make_server(handler, config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.x response: status, headers (lowercase names), body (Content-Length)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 2) == b""
    except ConnectionResetError:
        return True


def logged(caplog, text: str) -> int:
    return sum(text in record.getMessage() for record in caplog.records if record.name == PROTOCOL_LOG)


async def test_rate_limit_through_a_server(tmp_path):
    limiter = RequestLimiter(front_config(tmp_path, rate_limit=0.5, rate_burst=2))

    async def limited(request):
        try:
            limiter.check(request.remote)
        except TooManyRequests as error:
            return web.Response(status=error.status, headers=error.headers, text=error.reason)
        return web.Response(text="ok")

    async with serving(front_config(tmp_path), limited) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        statuses = []
        for _ in range(3):
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, _ = await read_response(reader)
            statuses.append(status)
        assert statuses == [200, 200, 429]
        assert int(headers["retry-after"]) >= 1
        writer.close()


async def test_slowloris_gets_408_and_is_closed(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with serving(front_config(tmp_path, header_timeout=1.0)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")

        async def drip():
            for byte in b"X-Slow: " + b"a" * 100:
                await asyncio.sleep(0.3)
                writer.write(bytes([byte]))

        dripping = asyncio.create_task(drip())
        try:
            status, headers, _ = await read_response(reader)
            elapsed = time.monotonic() - started
        finally:
            dripping.cancel()
        assert status == 408
        assert headers["connection"] == "close"
        assert 0.9 <= elapsed < 1.6
        assert await closed_by_server(reader)
        writer.close()
    assert logged(caplog, "no complete request head within 1 s") == 1


async def test_silent_connection_gets_408(tmp_path):
    async with serving(front_config(tmp_path, header_timeout=0.5)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        status, _, _ = await read_response(reader)
        assert status == 408
        assert await closed_by_server(reader)
        writer.close()


async def test_idle_keepalive_is_not_cut_but_a_slow_next_head_is(tmp_path):
    async with serving(front_config(tmp_path, header_timeout=0.5, keepalive_timeout=5.0)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(reader))[0] == 200
        await asyncio.sleep(0.8)  # idle between requests: keepalive_timeout's business
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        assert (await read_response(reader))[0] == 200
        writer.write(b"GET / HTTP/1.1\r\n")  # then a head that never completes
        started = time.monotonic()
        status, _, _ = await read_response(reader)
        assert status == 408
        assert 0.4 <= time.monotonic() - started < 1.0
        assert await closed_by_server(reader)
        writer.close()


async def test_a_slow_body_is_not_a_slow_head(tmp_path):
    async with serving(front_config(tmp_path, header_timeout=0.5)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n")
        for byte in b"body":
            await asyncio.sleep(0.25)
            writer.write(bytes([byte]))
        assert (await read_response(reader))[0] == 200
        writer.close()


async def expect_status(port: int, request: bytes, *, chunks: int = 1) -> int:
    """Send a request in pieces on a raw socket; the answer's status (a refusal must close).

    A raw socket, because a send failing once the server refused must not hide
    the answer already received (asyncio streams would raise instead).
    """
    loop = asyncio.get_running_loop()

    async def receive() -> bytes:
        try:
            return await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
        except ConnectionResetError:
            return b""

    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setblocking(False)
        size = -(-len(request) // chunks)
        for start in range(0, len(request), size):
            try:
                await loop.sock_sendall(sock, request[start:start + size])
            except ConnectionError:
                break  # refused before the end: the answer is already on its way
            await asyncio.sleep(0.01)
        received = b""
        while b"\r\n\r\n" not in received:
            data = await receive()
            assert data, "closed without an answer"
            received += data
        status = int(received.split()[1])
        if status != 200:
            while await receive():
                pass
        return status


async def test_head_size_limits(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with serving(front_config(tmp_path, max_header_kb=1)) as port:
        one_big_field = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2048 + b"\r\n\r\n"
        assert await expect_status(port, one_big_field) == 431
        assert await expect_status(port, one_big_field, chunks=8) == 431
        many_fields = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(
            b"X-Field-%02d: %s\r\n" % (n, b"b" * 80) for n in range(24)) + b"\r\n"
        assert await expect_status(port, many_fields) == 431
        assert await expect_status(port, many_fields, chunks=5) == 431
        with_a_body = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4096\r\n\r\n" + b"c" * 4096
        assert await expect_status(port, with_a_body) == 200
        long_target = b"GET /" + b"d" * 2048 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        assert await expect_status(port, long_target) == 414
        assert await expect_status(port, long_target, chunks=8) == 414
        just_fits = b"GET /" + b"e" * 900 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
        assert await expect_status(port, just_fits) == 200
    assert logged(caplog, "answered 414") == 2
    assert logged(caplog, "answered 431") == 4
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_pipelined_requests_within_the_limit_pass(tmp_path):
    async with serving(front_config(tmp_path, max_header_kb=1)) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        request = b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * 600 + b"\r\n\r\n"
        writer.write(request * 6)
        for _ in range(6):
            assert (await read_response(reader))[0] == 200
        writer.close()


async def test_bad_request_is_400_logged_once_at_info(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with serving(front_config(tmp_path)) as port:
        assert await expect_status(port, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n") == 400
    assert logged(caplog, "bad request") == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_connection_cap(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    async with serving(front_config(tmp_path, max_connections=3)) as port:
        open_ = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        for reader, writer in open_:
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(reader))[0] == 200

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = await read_response(reader)
        assert status == 429
        assert int(headers["retry-after"]) >= 1
        assert await closed_by_server(reader)
        writer.close()

        for reader, writer in open_:  # the first three still work
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert (await read_response(reader))[0] == 200

        open_[0][1].close()  # a slot frees when one closes
        await asyncio.sleep(0.1)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(reader))[0] == 200
        for _, other in open_[1:] + [(reader, writer)]:
            other.close()
    assert logged(caplog, "more than 3 open connections") == 1
