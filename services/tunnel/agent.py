"""The tunnel agent: keeps a warm pool of authenticated TLS connections to the relay.

Each of `pool_size` slots dials the relay, proves who it is, and waits. When
the relay hands a public connection over one of them, the slot passes it on
(carry) and at once dials a replacement, so the pool stays warm. Each public
connection is carried to the front end's PROXY-protocol listener with a
PROXY v2 header naming the real client, and from there on the bytes (TLS,
which ends at the front end) are copied both ways untouched. See pool.py for
why a pool rather than a multiplexed session.

A slot that cannot reach the relay waits a jittered, doubling delay capped at
backoff_max before the next try, so a returning relay is not hit by every
agent at once. State goes to var/run/tunnel.agent.json for `hearth status`.
"""
from __future__ import annotations

import asyncio
import logging
import random
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from services.core.proxy_protocol import proxy_v2_header

from .agent_state import write_state
from .relay_trust import matches_pin
from .splice import close_quietly, splice
from .wire import MAX_LINE, PING_SECONDS, WireError, encode, read_message

log = logging.getLogger("tunnel")

DIAL_SECONDS = 10.0
FIRST_DELAY = 0.5
# The relay closes idle public streams itself; this only bounds what a vanished relay leaves behind.
STREAM_IDLE_SECONDS = 3600.0
STATE_EVERY = 1.0
# A handover's "terminated": absent when the client's own TLS follows, else the scheme the relay ended.
TERMINATED = (None, "http", "https")


class Refused(Exception):
    """The relay answered the hello with a refusal (wrong secret, hostnames not ours)."""


@dataclass(frozen=True)
class AgentSettings:
    relay: tuple[str, int]
    name: str
    secret: str
    hostnames: tuple[str, ...]
    pool_size: int
    backoff_max: float
    context: ssl.SSLContext
    relay_name: str | None       # the name the certificate must carry (CA mode)
    pin: str | None
    front: tuple[str, int]       # the front end's PROXY-protocol listener


class ResumedSessions:
    """Offers the relay the TLS session of the last pool connection, so the next one resumes it.

    The agent dials one pool connection per public connection, and a resumed TLS 1.3
    handshake (the ticket's key plus a fresh ECDHE) skips the relay's certificate: no
    parsing and chain check here (slow on OpenSSL 3) and no signature at the relay,
    about half the handshake's CPU. Trust is unchanged: the ticket came over a connection
    that passed the CA or pin check, and the session keeps the relay's certificate, so the
    pin is still compared. A ticket the relay no longer accepts (it restarted) just means
    a full handshake. asyncio calls context.wrap_bio() with no session, hence the wrapper.

    One ticket serves many dials, until half its lifetime is gone or the relay declines it:
    reading a session out of Python's ssl module copies it through DER, certificate and all
    (slow on OpenSSL 3: a tenth of the agent's CPU per public connection when done each time).
    Each resumption still runs its own ECDHE, so reusing the ticket keeps forward secrecy;
    the relay's tickets are stateless, so it accepts one more than once.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self.last: ssl.SSLSession | None = None
        self._wrap_bio = context.wrap_bio
        context.wrap_bio = self.wrap_bio

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | None = None, session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        return self._wrap_bio(incoming, outgoing, server_side, server_hostname, session or self.last)

    def keep(self, writer: asyncio.StreamWriter) -> None:
        """Remember the connection's session (its ticket has arrived) unless the kept one still serves."""
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object.session_reused and self.last is not None and not self._ageing(self.last):
            return
        session = ssl_object.session
        if session is not None and session.has_ticket:
            self.last = session

    @staticmethod
    def _ageing(session: ssl.SSLSession) -> bool:
        return time.time() - session.time > session.ticket_lifetime_hint / 2


class Agent:
    def __init__(self, settings: AgentSettings, state_path: Path):
        self.settings = settings
        self.sessions = ResumedSessions(settings.context)
        self.state_path = state_path
        self.state = "connecting"
        self.since = time.time()
        self.last_error: str | None = None
        self.idle = 0
        self.open_streams = 0
        self.streams_total = 0
        self.streams: set[asyncio.Task] = set()

    async def run(self) -> None:
        self.save()
        slots = [asyncio.create_task(self.slot()) for _ in range(self.settings.pool_size)]
        try:
            while True:
                await asyncio.sleep(STATE_EVERY)
                self.save()
        finally:
            for task in (*slots, *self.streams):
                task.cancel()

    # state

    def set_state(self, state: str, error: str | None = None) -> None:
        if error:
            self.last_error = error
        if state != self.state:
            if state == "connected":
                log.info("connected to relay %s:%d", *self.settings.relay)
            else:
                log.warning("relay %s:%d: %s (%s)", *self.settings.relay, state, self.last_error)
            self.state, self.since = state, time.time()
            self.save()

    def save(self) -> None:
        write_state(self.state_path, {
            "state": self.state, "since": self.since, "relay": "%s:%d" % self.settings.relay,
            "last_error": self.last_error, "idle_connections": self.idle, "open_streams": self.open_streams,
            "streams_total": self.streams_total})

    # one pool slot

    async def slot(self) -> None:
        failures = 0
        while True:
            try:
                reader, writer = await self.dial()
            except (OSError, ssl.SSLError, TimeoutError, WireError, Refused, ConnectionError) as error:
                failures += 1
                self.set_state("reconnecting" if self.idle == 0 else self.state, f"{type(error).__name__}: {error}")
                await asyncio.sleep(self.backoff(failures))
                continue
            failures = 0
            self.idle += 1
            self.set_state("connected")
            try:
                handover = await self.wait_for_handover(reader)
            except (OSError, TimeoutError, WireError, ConnectionError) as error:
                self.idle -= 1
                await close_quietly(writer)
                if self.idle == 0:
                    self.set_state("reconnecting", f"pool connection lost: {error or type(error).__name__}")
                continue
            self.idle -= 1
            task = asyncio.create_task(self.carry(handover, reader, writer))
            self.streams.add(task)
            task.add_done_callback(self.streams.discard)

    def backoff(self, failures: int) -> float:
        ceiling = min(self.settings.backoff_max, FIRST_DELAY * 2 ** min(failures - 1, 30))
        return random.uniform(ceiling / 2, ceiling)

    async def dial(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        settings = self.settings
        async with asyncio.timeout(DIAL_SECONDS):
            reader, writer = await asyncio.open_connection(
                *settings.relay, ssl=settings.context, server_hostname=settings.relay_name or settings.relay[0],
                limit=MAX_LINE)
            try:
                if settings.pin:
                    certificate = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                    if not certificate or not matches_pin(certificate, settings.pin):
                        raise ssl.SSLError("the relay's public key does not match [tunnel] relay_pin")
                writer.write(encode({"agent": settings.name, "secret": settings.secret,
                                     "hostnames": list(settings.hostnames)}))
                await writer.drain()
                answer = await read_message(reader)
                if not answer or answer.get("ok") is not True:
                    raise Refused(f"the relay refused us: {(answer or {}).get('error', 'no reason given')}")
                # The relay sends its tickets right after the handshake, so they came before this answer.
                self.sessions.keep(writer)
            except BaseException:
                writer.close()
                raise
        return reader, writer

    async def wait_for_handover(self, reader: asyncio.StreamReader) -> dict:
        """Wait on an idle pool connection (answering to pings) until the relay hands a client over it."""
        while True:
            async with asyncio.timeout(3 * PING_SECONDS):
                message = await read_message(reader)
            if message is not None:
                return message

    # one public connection

    async def carry(self, handover: dict, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_streams += 1
        self.streams_total += 1
        try:
            try:
                terminated = handover.get("terminated")
                if terminated not in TERMINATED:
                    raise ValueError(f"terminated: {terminated!r}")
                header = proxy_v2_header(
                    (str(handover["client"]), int(handover["port"])),
                    (str(handover.get("server", "0.0.0.0")), int(handover.get("server_port", 443))),
                    plain_after=terminated)
            except (KeyError, ValueError, TypeError) as error:
                log.warning("relay sent a bad handover %r: %s", handover, error)
                await close_quietly(writer)
                return
            try:
                front_reader, front_writer = await asyncio.open_connection(*self.settings.front)
            except OSError as error:
                log.warning("cannot reach the front end at %s:%d: %s", *self.settings.front, error)
                await close_quietly(writer)
                return
            front_writer.write(header)
            await splice((reader, writer), (front_reader, front_writer), idle_timeout=STREAM_IDLE_SECONDS)
        finally:
            self.open_streams -= 1
