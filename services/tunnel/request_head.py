"""The first HTTP request on a plain connection to the relay: enough to route it by Host, parsed by h11.

The relay never rewrites the request: it reads the head to learn the Host,
then passes every byte it read (and all that follow) on unchanged. It can
also answer by itself (a redirect, a refusal) through the same h11
connection, so the response is well-formed HTTP/1.1.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from http import HTTPStatus

import h11

READ_SIZE = 4096


class NotARequest(Exception):
    """The bytes are not an HTTP/1.x request head (or it is too long)."""

    def __init__(self, reason: str, connection: h11.Connection):
        super().__init__(reason)
        self.connection = connection


@dataclass
class RequestHead:
    raw: bytes                 # every byte read so far, to pass on as it came
    host: str                  # the Host header without port, lower case, no trailing dot
    target: str                # the request target, for a redirect
    method: str
    connection: h11.Connection

    def answer(self, status: int, text: str, headers: list[tuple[str, str]] = ()) -> bytes:
        return respond(self.connection, status, text, headers, with_body=self.method != "HEAD")


async def read_request_head(reader: asyncio.StreamReader, max_bytes: int) -> RequestHead:
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=max_bytes)
    raw = bytearray()
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError as error:
            raise NotARequest(f"not an HTTP request: {str(error)[:100]}", connection) from None
        if event is h11.NEED_DATA:
            data = await reader.read(READ_SIZE)
            raw += data
            connection.receive_data(data)   # b"" is the end of the stream
            continue
        if isinstance(event, h11.Request):
            headers = {name: value for name, value in event.headers}
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            return RequestHead(bytes(raw), host, event.target.decode("latin-1"), event.method.decode("latin-1"),
                               connection)
        raise NotARequest("closed before a whole request head", connection)


def respond(connection: h11.Connection, status: int, text: str, headers: list[tuple[str, str]] = (),
            with_body: bool = True) -> bytes:
    """A whole response with a short text body (none to a HEAD); the connection is closed after it."""
    body = text.encode()
    try:
        data = connection.send(h11.Response(status_code=status, reason=HTTPStatus(status).phrase, headers=[
            *headers, ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
            ("Connection", "close")]))
        if with_body and body:
            data += connection.send(h11.Data(data=body))
        return data + connection.send(h11.EndOfMessage())
    except h11.LocalProtocolError:   # too broken a request to answer at all
        return b""


def host_name(value: str) -> str:
    """`Host: Example.org.:80` -> example.org; IPv6 literals keep their brackets off."""
    value = value.strip()
    if value.startswith("["):
        value = value[1:value.find("]")] if "]" in value else ""
    else:
        name, sep, port = value.rpartition(":")
        if sep and port.isdigit():
            value = name
    return value.rstrip(".").lower()
