"""Read a TLS ClientHello off a stream and find its SNI, without decrypting anything.

The relay must route an encrypted connection by the name the client asked
for, so it reads the first TLS records (RFC 8446 §5.1, §4.1.2), reassembles
the ClientHello handshake message (it may span records) and walks its
extensions to server_name (RFC 6066 §3). Every length is checked against what
is left; the whole is bounded by `max_bytes`. The raw bytes read are returned
untouched so the relay can pass them on: TLS ends at home.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

RECORD_HANDSHAKE = 22
HANDSHAKE_CLIENT_HELLO = 1
EXTENSION_SERVER_NAME = 0
NAME_TYPE_HOST = 0
MAX_RECORD = 16384 + 256  # a TLSPlaintext fragment may be up to 2^14 bytes; allow for slack


class NotAClientHello(Exception):
    """The bytes are not a TLS ClientHello we can route; the message says what was wrong."""


@dataclass(frozen=True)
class ClientHello:
    raw: bytes            # every byte read from the client, records and all
    server_name: str | None


async def read_client_hello(reader: asyncio.StreamReader, max_bytes: int) -> ClientHello:
    """Read records until one whole ClientHello is in; raise NotAClientHello on anything else.

    Time limits are the caller's (wrap it in asyncio.timeout).
    """
    raw = bytearray()
    handshake = bytearray()
    needed: int | None = None
    while needed is None or len(handshake) < needed:
        header = await _read(reader, 5, raw, max_bytes)
        content_type, major, length = header[0], header[1], int.from_bytes(header[3:5], "big")
        if content_type != RECORD_HANDSHAKE or major != 3:
            raise NotAClientHello("not a TLS handshake record")
        if length == 0 or length > MAX_RECORD:
            raise NotAClientHello(f"TLS record length {length} out of range")
        handshake += await _read(reader, length, raw, max_bytes)
        if needed is None and len(handshake) >= 4:
            if handshake[0] != HANDSHAKE_CLIENT_HELLO:
                raise NotAClientHello("first handshake message is not a ClientHello")
            needed = 4 + int.from_bytes(handshake[1:4], "big")
            if needed > max_bytes:
                raise NotAClientHello(f"ClientHello of {needed} bytes is over the {max_bytes}-byte bound")
    return ClientHello(raw=bytes(raw), server_name=server_name(bytes(handshake[4:needed])))


async def _read(reader: asyncio.StreamReader, count: int, raw: bytearray, max_bytes: int) -> bytes:
    if len(raw) + count > max_bytes:
        raise NotAClientHello(f"ClientHello longer than {max_bytes} bytes")
    try:
        chunk = await reader.readexactly(count)
    except asyncio.IncompleteReadError:
        raise NotAClientHello("connection closed inside the ClientHello") from None
    raw += chunk
    return chunk


class _Cursor:
    """Bounds-checked reads over one byte string."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, count: int) -> bytes:
        if count < 0 or self.pos + count > len(self.data):
            raise NotAClientHello("ClientHello field runs past its end")
        chunk = self.data[self.pos:self.pos + count]
        self.pos += count
        return chunk

    def number(self, width: int) -> int:
        return int.from_bytes(self.take(width), "big")

    def vector(self, width: int) -> "_Cursor":
        return _Cursor(self.take(self.number(width)))

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def server_name(body: bytes) -> str | None:
    """The host_name of the server_name extension of a ClientHello body, lower-cased; None if absent."""
    hello = _Cursor(body)
    hello.take(2 + 32)       # legacy_version, random
    hello.vector(1)          # legacy_session_id
    hello.vector(2)          # cipher_suites
    hello.vector(1)          # legacy_compression_methods
    if hello.left == 0:
        return None          # no extensions at all (old clients)
    extensions = hello.vector(2)
    while extensions.left:
        kind = extensions.number(2)
        data = extensions.vector(2)
        if kind != EXTENSION_SERVER_NAME:
            continue
        names = data.vector(2)
        while names.left:
            name_type = names.number(1)
            name = names.vector(2)
            if name_type == NAME_TYPE_HOST:
                return _hostname(name.data)
        return None
    return None


def _hostname(value: bytes) -> str:
    try:
        name = value.decode("ascii").rstrip(".").lower()
    except UnicodeDecodeError:
        raise NotAClientHello("server name is not ASCII") from None
    if not name or len(name) > 253 or not all(c.isalnum() or c in "-." for c in name):
        raise NotAClientHello(f"server name {name[:64]!r} is not a host name")
    return name
