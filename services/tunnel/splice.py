"""Copy bytes both ways between two streams until either side is done or the pair goes idle.

The copy runs at the protocol level: each connection's transport gets an
`_End` protocol whose data_received writes straight into the other
connection's transport, so a chunk costs one call and no buffer of our own
(a StreamReader/StreamWriter pair would copy it through its buffer and wake
a task per chunk). Flow control is the transports' own: when one side's
write buffer passes its high-water mark, its protocol pauses reading on the
other side, and resumes it below the low-water mark. A slow reader therefore
slows only its own stream: with one TCP connection per stream (the relay's
pool design) nothing else waits behind it.
"""
from __future__ import annotations

import asyncio
from typing import Callable

# How much each transport may hold unsent before the other side stops being read: one
# socket read's worth (256 KiB), so a fast pair rarely stalls, yet a relay with hundreds
# of slow clients holds well under a MiB for each. 1 and 4 MiB measured no faster.
WRITE_HIGH_WATER = 256 * 1024
WRITE_LOW_WATER = 64 * 1024
CLOSE_SECONDS = 2.0

Tap = Callable[[str, bytes], None]
Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Counter:
    """Bytes moved so far, per direction; shared with whoever reports them."""

    def __init__(self) -> None:
        self.inbound = 0    # public client -> home
        self.outbound = 0   # home -> public client


class _Pair:
    """What both ends share: the counter, the tap, the last time a byte moved, and whether it is over."""

    def __init__(self, counter: Counter, tap: Tap | None, idle_timeout: float) -> None:
        self.counter = counter
        self.tap = tap
        self.idle_timeout = idle_timeout
        self.loop = asyncio.get_running_loop()
        self.last_activity = self.loop.time()
        self.finished = self.loop.create_future()
        # A timer rather than a task: cheaper to set up for the many short streams.
        self.idle_timer = self.loop.call_later(idle_timeout, self.check_idle)

    def check_idle(self) -> None:
        idle = self.loop.time() - self.last_activity
        if idle >= self.idle_timeout:
            self.finish()
        else:
            self.idle_timer = self.loop.call_later(self.idle_timeout - idle, self.check_idle)

    def finish(self) -> None:
        self.idle_timer.cancel()
        if not self.finished.done():
            self.finished.set_result(None)


class _End(asyncio.Protocol):
    """One connection of the pair; `direction` names the bytes it receives ("in": from the public client)."""

    def __init__(self, pair: _Pair, stream: Stream, direction: str) -> None:
        self.pair = pair
        self.direction = direction
        self.transport: asyncio.Transport = stream[1].transport  # type: ignore[assignment]
        # The streams' own protocol still hears connection_lost, so StreamWriter.wait_closed() works.
        self.stream_protocol = self.transport.get_protocol()
        self.lost = pair.loop.create_future()
        self.other: _End

    def data_received(self, data: bytes) -> None:
        pair = self.pair
        if pair.finished.done():
            return   # the other side is gone or going: its transport may refuse writes
        pair.last_activity = pair.loop.time()
        if self.direction == "in":
            pair.counter.inbound += len(data)
        else:
            pair.counter.outbound += len(data)
        if pair.tap is not None:
            pair.tap(self.direction, data)
        self.other.transport.write(data)

    def eof_received(self) -> bool:
        # Both streams carry TLS, whose close_notify has already passed by then, and a pool
        # connection (itself TLS) cannot be half-closed: so one side's end ends the pair.
        self.pair.finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.pair.finish()
        if not self.lost.done():
            self.lost.set_result(None)
        self.stream_protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.other.transport.pause_reading()

    def resume_writing(self) -> None:
        self.other.transport.resume_reading()


async def splice(client: Stream, home: Stream, *, idle_timeout: float, counter: Counter | None = None,
                 tap: Tap | None = None) -> None:
    """Relay between `client` and `home`; returns when one side closes or nothing moved for idle_timeout."""
    pair = _Pair(counter or Counter(), tap, idle_timeout)
    inbound, outbound = _End(pair, client, "in"), _End(pair, home, "out")
    inbound.other, outbound.other = outbound, inbound
    try:
        # Both ends get their protocol before either passes on a byte, so flow control holds from the first.
        held = [_take_over(end, reader) for end, (reader, _) in ((inbound, client), (outbound, home))]
        for end, (reader, _), data in zip((inbound, outbound), (client, home), held):
            _start(end, reader, data)
        await pair.finished
    finally:
        pair.finish()
        for _, writer in (client, home):
            writer.close()
        # Closing flushes what is buffered; wait for both (bounded), so the caller's counts stay true.
        await asyncio.wait([inbound.lost, outbound.lost], timeout=CLOSE_SECONDS)


def _take_over(end: _End, reader: asyncio.StreamReader) -> bytes:
    """Move `end`'s transport from its StreamReader to `end`; returns what the reader already held."""
    transport = end.transport
    if transport.is_closing():
        # Over before it began (its connection_lost may have gone to the StreamReader already).
        end.lost.set_result(None)
        end.pair.finish()
        return b""
    transport.set_write_buffer_limits(WRITE_HIGH_WATER, WRITE_LOW_WATER)
    transport.set_protocol(end)
    if not transport.is_reading():
        transport.resume_reading()   # the StreamReader had paused it with its buffer full
    # Bytes that arrived with the handshake (a ClientHello behind the handover line) sit in the
    # reader's buffer; asyncio offers no public way to take them without waiting for more.
    held = bytes(reader._buffer)
    reader._buffer.clear()
    return held


def _start(end: _End, reader: asyncio.StreamReader, held: bytes) -> None:
    if held:
        end.data_received(held)
    if reader.at_eof() or reader.exception() is not None:
        end.pair.finish()


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), CLOSE_SECONDS)
    except (OSError, asyncio.TimeoutError, ConnectionError):
        pass
