"""The door's PROXY-protocol listener: where the tunnel agent hands over public connections.

Every connection on `[front] proxy_protocol_listen` must open with a PROXY
protocol v2 header (haproxy's proxy-protocol.txt §2.2); its source address
becomes the client's address for everything downstream (rate limits,
connection caps, X-Forwarded-For, the access log). A connection without a
valid header is closed, logged once. The listener binds to loopback only:
believing the header is safe only when nobody but the agent can connect.

The header is read straight off the socket with exact-sized reads, so the
TLS bytes behind it stay in the kernel buffer and the TLS layer (the front's
own certificate, as on [front] listen) starts on the next byte. Then the
connection is served by the same aiohttp server as the main listener, its
transport wrapped to report the header's address as the peer.

A header carrying the SSL TLV (§2.2.5) says the relay already ended the
client's TLS (a hostname the relay terminates) or there was none (plain
:80): plain HTTP follows, and the TLV's client bit says whether the client
spoke https, which is then what the request's scheme is.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Any, Callable

from services.core.config import Config, ConfigError
from services.core.proxy_protocol import (
    ADDRESS_BYTES,
    PP2_CLIENT_SSL,
    PP2_TYPE_SSL,
    SIGNATURE,
    TCP_OVER_IPV4,
    VERSION_2_LOCAL,
    VERSION_2_PROXY,
)

log = logging.getLogger("front.proxy")

MAX_HEADER_BODY = 1024                  # addresses plus TLVs; the agent sends at most the SSL one
HEADER_SECONDS = 5.0


class BadProxyHeader(Exception):
    """The connection did not open with a PROXY v2 header we accept."""


@dataclass(frozen=True)
class ProxyHeader:
    client: tuple[str, int] | None    # None for LOCAL (a health check: no client)
    plain_after: str | None = None    # "http"/"https" when plain HTTP follows, None for the client's TLS


def listen_address(config: Config) -> tuple[str, int] | None:
    """[front] proxy_protocol_listen as (host, port), checked to be loopback; None when unset."""
    value = config.front.proxy_protocol_listen
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not sep or not port.isdigit() or not loopback:
        raise ConfigError(f"{config.path or 'hearth.toml'}: [front] proxy_protocol_listen: expected a "
                          f"loopback HOST:PORT (only the tunnel agent may claim client addresses), got {value!r}")
    return host, int(port)


async def read_proxy_header(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> ProxyHeader:
    """The client (address, port) a PROXY v2 header names, and whether plain HTTP follows it."""
    fixed = await _recv_exactly(loop, sock, 16)
    if fixed[:12] != SIGNATURE:
        raise BadProxyHeader("no PROXY protocol v2 signature")
    command, family, length = struct.unpack("!BBH", fixed[12:])
    if length > MAX_HEADER_BODY:
        raise BadProxyHeader(f"PROXY header body of {length} bytes")
    body = await _recv_exactly(loop, sock, length)
    if command == VERSION_2_LOCAL:
        return ProxyHeader(None)
    if command != VERSION_2_PROXY:
        raise BadProxyHeader(f"PROXY command byte {command:#x}")
    needed = ADDRESS_BYTES.get(family)
    if needed is None or length < needed:
        raise BadProxyHeader(f"PROXY family {family:#x} with {length} bytes (want TCP over IPv4 or IPv6)")
    size = 4 if family == TCP_OVER_IPV4 else 16
    source = ipaddress.ip_address(body[:size])
    if isinstance(source, ipaddress.IPv6Address) and source.ipv4_mapped:
        source = source.ipv4_mapped
    (port,) = struct.unpack("!H", body[2 * size:2 * size + 2])
    return ProxyHeader((str(source), port), _plain_after(body[needed:]))


def _plain_after(tlvs: bytes) -> str | None:
    """The scheme the SSL TLV reports, if there is one; other TLVs are skipped, as the spec says."""
    while tlvs:
        if len(tlvs) < 3:
            raise BadProxyHeader("truncated PROXY TLV")
        kind, length = struct.unpack("!BH", tlvs[:3])
        value, tlvs = tlvs[3:3 + length], tlvs[3 + length:]
        if len(value) < length:
            raise BadProxyHeader("truncated PROXY TLV")
        if kind == PP2_TYPE_SSL:
            if not value:
                raise BadProxyHeader("empty PROXY SSL TLV")
            return "https" if value[0] & PP2_CLIENT_SSL else "http"
    return None


async def _recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = await loop.sock_recv(sock, count - len(data))
        if not chunk:
            raise BadProxyHeader("connection closed inside the PROXY header")
        data += chunk
    return data


class ClientTransport:
    """A transport that reports the PROXY header's client as its peer, and is otherwise the real one."""

    def __init__(self, transport: asyncio.Transport, client: tuple[str, int],
                 relayed_tls: ssl.SSLContext | None = None):
        self._transport = transport
        self._client = client
        self._relayed_tls = relayed_tls

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._client
        if name == "sslcontext" and self._relayed_tls is not None:
            return self._relayed_tls   # aiohttp's request.scheme: https, ended at the relay
        return self._transport.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class ClientProtocol(asyncio.Protocol):
    """Hands the wrapped transport to the door's own protocol and forwards every event to it."""

    def __init__(self, inner: asyncio.Protocol, client: tuple[str, int] | None,
                 relayed_tls: ssl.SSLContext | None = None):
        self.inner = inner
        self.client = client
        self.relayed_tls = relayed_tls

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(ClientTransport(transport, self.client, self.relayed_tls) if self.client
                                   else transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class ProxyProtocolListener:
    """Accepts on the loopback address, reads each header, then serves the connection with `protocol_factory`."""

    def __init__(self, address: tuple[str, int], protocol_factory: Callable[[], asyncio.Protocol],
                 ssl_context: ssl.SSLContext | None):
        self.address = address
        self.protocol_factory = protocol_factory
        self.ssl_context = ssl_context
        self.sock: socket.socket | None = None
        self.task: asyncio.Task | None = None
        self.pending: set[asyncio.Task] = set()
        # What a relay-ended https connection reports as its "sslcontext": aiohttp reads only its truth.
        self.relayed_tls = ssl_context or ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self.address)
        sock.listen(128)
        sock.setblocking(False)
        self.sock = sock
        self.task = asyncio.create_task(self._accept_loop())

    async def close(self) -> None:
        for task in (self.task, *self.pending):
            if task is not None:
                task.cancel()
        if self.sock is not None:
            self.sock.close()

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self.sock)
            except OSError as error:  # EMFILE and friends: keep the listener, try again shortly
                log.warning("proxy listener: accept failed: %s", error)
                await asyncio.sleep(0.1)
                continue
            task = asyncio.create_task(self._serve(conn))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def _serve(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        conn.setblocking(False)
        try:
            async with asyncio.timeout(HEADER_SECONDS):
                header = await read_proxy_header(loop, conn)
            own_tls = self.ssl_context if header.plain_after is None else None
            relayed_tls = self.relayed_tls if header.plain_after == "https" else None
            await loop.connect_accepted_socket(
                lambda: ClientProtocol(self.protocol_factory(), header.client, relayed_tls), conn,
                ssl=own_tls, ssl_handshake_timeout=HEADER_SECONDS if own_tls else None)
        except BadProxyHeader as error:
            log.info("proxy listener: %s: refused: %s", _peer(conn), error)
            conn.close()
        except TimeoutError:
            log.info("proxy listener: %s: refused: no PROXY header (or TLS handshake) within %g s",
                     _peer(conn), HEADER_SECONDS)
            conn.close()
        except (OSError, ssl.SSLError) as error:
            log.info("proxy listener: %s: connection failed: %s", _peer(conn), error)
            conn.close()


def _peer(conn: socket.socket) -> str:
    try:
        host, port = conn.getpeername()[:2]
        return f"{host}:{port}"
    except OSError:
        return "unknown"
