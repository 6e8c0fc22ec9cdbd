"""The relay's limits on loopback: per-agent max_streams, the idle timeout, pings on idle pool
connections, and the agent handshake that must come before any connection is handed over.

One topology serves the whole module (tests.test_tunnel's Topology: relay, agent, front end and API,
each its own process) with max_streams = 2 and idle_timeout = 1 s: small enough to reach in a test,
while the slow download (a chunk every SLOW_GAP = 0.25 s) stays well inside the idle timeout.
"""
from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time

import pytest

from services.tunnel.wire import PING, PING_SECONDS
from tests.test_tunnel import (PHONE, SECRET, SITE, SLOW_CHUNK, SLOW_CHUNKS, SLOW_GAP, Topology, count_lines,
                               phone_get, run, wait_until)

pytestmark = pytest.mark.timeout(120)

MAX_STREAMS = 2
IDLE_TIMEOUT = 1.0
POOL_SIZE = 4               # [tunnel] pool_size in Topology's hearth.toml
ROTATED_SECRET = "a-second-secret-being-rotated-in"   # Topology's home.secret.next


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    with Topology(tmp_path_factory.mktemp("tunnel-limits"), max_streams=MAX_STREAMS,
                  idle_timeout=IDLE_TIMEOUT) as topology:
        yield topology


def relay_agent(topology: Topology) -> dict:
    return (topology.status() or {}).get("agents", {}).get("home", {})


async def in_thread(function, *args, **kwargs):
    """A blocking helper (wait_until, a raw socket) off the event loop that drives the phone's downloads."""
    return await asyncio.to_thread(function, *args, **kwargs)


def full_slow_body(status: int, body: bytes) -> bool:
    return status == 200 and len(body) == SLOW_CHUNKS * SLOW_CHUNK


# -- max_streams -----------------------------------------------------------------------------

def test_a_stream_over_max_streams_is_refused_until_the_open_ones_finish(limited):
    async def scenario() -> None:
        downloads = [asyncio.create_task(phone_get(limited, "/up/slow", timeout=30)) for _ in range(MAX_STREAMS)]
        await in_thread(wait_until, "both downloads to hold a stream",
                        lambda: relay_agent(limited).get("open_streams") == MAX_STREAMS, timeout=10)
        started = time.monotonic()
        with pytest.raises((ssl.SSLError, ConnectionError, asyncio.IncompleteReadError)):
            await phone_get(limited, "/up/echo", headers={"X-Marker": "third"}, timeout=5)
        # Refused at the door, not left to time out.
        assert time.monotonic() - started < 2
        assert not any(download.done() for download in downloads), "the limit was tested after a download ended"
        for status, body in await asyncio.gather(*downloads):
            assert full_slow_body(status, body), (status, len(body))

    run(scenario())
    wait_until("the streams to be counted closed", lambda: relay_agent(limited).get("open_streams") == 0)
    status, body = run(phone_get(limited, "/up/echo", headers={"X-Marker": "after"}))
    assert status == 200 and body.startswith(b"echo after")

    relay = limited.relay
    refusals = [line for line in relay.log().splitlines() if f"(max_streams {MAX_STREAMS})" in line]
    assert len(refusals) == 1, relay.log()
    assert "'home'" in refusals[0] and f"{PHONE}:" in refusals[0], refusals
    assert limited.status()["refused"].get("limit") == 1, limited.status()


# -- idle_timeout ----------------------------------------------------------------------------

def silent_phone(topology: Topology) -> tuple[float, str]:
    """Complete TLS with home through the relay, then say nothing: (seconds until cut, how it ended).

    Ragged EOFs are not suppressed, so a cut by the relay (which speaks no TLS and can only close the
    TCP connection) is told apart from home's front end closing with a TLS close_notify."""
    raw = socket.socket()
    raw.bind((PHONE, 0))
    raw.settimeout(15)
    raw.connect(("127.0.0.1", topology.ports["public"]))
    with topology.phone_context().wrap_socket(raw, server_hostname=SITE, suppress_ragged_eofs=False) as tls:
        started = time.monotonic()
        try:
            data = tls.recv(1024)
            how = "close_notify" if data == b"" else f"data {data[:40]!r}"
        except ssl.SSLEOFError:
            how = "cut"
        except ConnectionResetError:
            how = "reset"
        except TimeoutError:
            how = "still open"
        return time.monotonic() - started, how


def test_a_silent_connection_is_closed_after_idle_timeout_but_a_slow_download_is_not(limited):
    async def scenario() -> tuple[float, str, float]:
        started = time.monotonic()
        download = asyncio.create_task(phone_get(limited, "/up/slow", timeout=30))
        silent_for, how = await in_thread(silent_phone, limited)
        assert not download.done(), "the download ended before the silent connection was cut"
        # The cut stream is counted closed while the download's stream is still open.
        await in_thread(wait_until, "the silent stream to be counted closed",
                        lambda: relay_agent(limited).get("open_streams") == 1, timeout=5)
        assert not download.done()
        status, body = await download
        assert full_slow_body(status, body), (status, len(body))
        return silent_for, how, time.monotonic() - started

    silent_for, how, download_took = run(scenario())
    print(f"silent connection cut after {silent_for:.2f} s ({how}); slow download took {download_took:.2f} s")
    assert how in ("cut", "reset"), f"the silent connection ended by {how}, not by the relay's cut"
    assert IDLE_TIMEOUT * 0.8 <= silent_for < IDLE_TIMEOUT + 2.0
    # The download lasted several idle timeouts, and was never idle for one.
    assert download_took > SLOW_CHUNKS * SLOW_GAP * 0.8 > 3 * IDLE_TIMEOUT
    wait_until("open_streams back to 0", lambda: relay_agent(limited).get("open_streams") == 0)


# -- the agent handshake ---------------------------------------------------------------------

def agent_hello(topology: Topology, secret: str):
    """A TLS connection to the control listener that has said hello as agent 'home': (socket, reader, answer)."""
    context = ssl.create_default_context(cafile=str(topology.home / "relay-ca.pem"))
    raw = socket.create_connection(("127.0.0.1", topology.ports["control"]), timeout=5)
    tls = context.wrap_socket(raw, server_hostname="relay.test")
    tls.sendall(json.dumps({"agent": "home", "secret": secret, "hostnames": [SITE]}).encode() + b"\n")
    reader = tls.makefile("rb")
    return tls, reader, json.loads(reader.readline())


def closed(reader) -> bool:
    try:
        return reader.read() == b""
    except ConnectionResetError:
        return True


def test_only_an_authenticated_agent_joins_the_pool_and_a_rotated_secret_is_valid(limited):
    wait_until("the agent's full pool", lambda: relay_agent(limited).get("idle_connections") == POOL_SIZE)
    refused_before = limited.status()["refused"].get("agent", 0)

    tls, reader, answer = agent_hello(limited, "wrong-but-long-enough-secret")
    try:
        assert answer["ok"] is False and "wrong secret" in answer["error"], answer
        assert closed(reader)
    finally:
        reader.close()
        tls.close()
    assert relay_agent(limited)["idle_connections"] == POOL_SIZE
    wait_until("the refusal's log line", lambda: count_lines(limited.relay, "unknown agent or wrong secret") >= 1)
    assert count_lines(limited.relay, "unknown agent or wrong secret") == 1, limited.relay.log()
    assert limited.status()["refused"].get("agent", 0) == refused_before + 1

    tls, reader, answer = agent_hello(limited, ROTATED_SECRET)
    try:
        assert answer == {"ok": True}
        wait_until("the rotated-in connection in the pool",
                   lambda: relay_agent(limited).get("idle_connections") == POOL_SIZE + 1)
    finally:
        reader.close()
        tls.close()
    # Gone from the pool once it hangs up, so no public connection is handed to it.
    wait_until("the relay to drop it", lambda: relay_agent(limited).get("idle_connections") == POOL_SIZE)
    assert limited.status()["refused"].get("agent", 0) == refused_before + 1
    status, body = run(phone_get(limited, "/up/echo", headers={"X-Marker": "pool"}))
    assert status == 200 and body.startswith(b"echo pool")


# -- pings -----------------------------------------------------------------------------------

def test_the_relay_pings_an_idle_pool_connection(limited):
    wait_until("the agent's full pool", lambda: relay_agent(limited).get("idle_connections") == POOL_SIZE)
    tls, reader, answer = agent_hello(limited, SECRET)
    try:
        assert answer == {"ok": True}
        tls.settimeout(PING_SECONDS + 5)
        started = time.monotonic()
        line = reader.readline()
        waited = time.monotonic() - started
    finally:
        reader.close()
        tls.close()
    print(f"ping after {waited:.2f} s")
    assert line == PING
    assert PING_SECONDS - 1 <= waited <= PING_SECONDS + 5
    wait_until("the relay to drop it", lambda: relay_agent(limited).get("idle_connections") == POOL_SIZE)
