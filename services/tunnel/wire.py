"""What agent and relay say to each other on a pool connection, before it carries raw bytes.

Every message is one JSON object on one line, bounded in size:
- agent -> relay, first: {"agent": NAME, "secret": SECRET, "hostnames": [...]}
- relay -> agent, answer: {"ok": true} or {"ok": false, "error": WHY} (then it closes)
- relay -> agent, while the connection waits in the pool: an empty line now and then (a ping:
  the agent knows its idle connections are alive)
- relay -> agent, to hand over a public connection: {"client": IP, "port": N, "hostname": H,
  "server": IP, "server_port": N}, plus "terminated": "http" or "https" when the relay ended the
  client's TLS itself (a [terminate] hostname, or plain :80) and plain HTTP follows; from the next
  byte on, the connection is that client's stream.
"""
from __future__ import annotations

import asyncio
import json
from typing import Any

# Also the streams' buffer limit (asyncio pauses reading at twice it): big enough not to slow a transfer.
MAX_LINE = 64 * 1024


class WireError(Exception):
    """The peer sent something that is not a message we expect."""


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message; None for a ping; WireError on EOF, an overlong line or bad JSON."""
    try:
        line = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        raise WireError("connection closed") from None
    except asyncio.LimitOverrunError:
        raise WireError(f"message longer than {MAX_LINE} bytes") from None
    if line == b"\n":
        return None
    try:
        message = json.loads(line)
    except ValueError:
        raise WireError("message is not JSON") from None
    if not isinstance(message, dict):
        raise WireError("message is not a JSON object")
    return message


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


PING = b"\n"
# How often the relay pings an idle pool connection; the agent gives one up after three missed pings.
PING_SECONDS = 15.0
