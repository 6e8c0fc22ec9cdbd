"""The door's HTTP/1.1 connections: aiohttp's low-level server with the limits a public port needs.

`make_server` adds to aiohttp's `web.Server`:
- a header timeout: a connection that has not delivered a complete request
  head within [front] header_timeout seconds of opening, or of the first byte
  of a later request head, gets 408 and is closed (slowloris). An idle
  keep-alive connection is closed after keepalive_timeout, by aiohttp itself;
- a size cap on the request head ([front] max_header_kb): a longer request
  line gets 414 (RFC 9112 says a target longer than the server will parse
  MUST get 414), a longer header block, or one longer header field, gets 431;
- a cap on open connections per client address ([front] max_connections):
  the connection over the cap gets 429 with Retry-After and is closed. Its
  addresses are keyed like the rate limiter's (IPv6 by /64) and
  trusted_proxies are not capped (every client behind them shares their
  address).
Each of these is logged once, at info, with the address and the reason.
A request head aiohttp parses but the door does not serve (no HTTP version,
a malformed Host: request_head.py) gets 400 the same way, with the reason. Other
malformed requests get aiohttp's 400, logged once at info instead of
aiohttp's error-level traceback.

This relies on aiohttp internals, pinned by tests/test_front_limits.py:
`RequestHandler.data_received/handle_error` and its `_messages`, `_waiter`,
`_payload_parser`, `_upgraded` attributes, and `web_protocol._ErrInfo`, the
queue entry aiohttp itself uses to answer a request it could not parse.
Queuing our own refusals there keeps responses in order on a connection with
a request still in progress, and reuses aiohttp's writer and access log.
"""
from __future__ import annotations

import asyncio
import logging
from http import HTTPStatus
from typing import Any, Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, _ErrInfo

from services.core.config import Config, ConfigError

from .limits import KIB, ConnectionLimiter
from .request_head import head_problem

log = logging.getLogger("front.protocol")

# Header fields per request; the byte limit is what really bounds a head.
MAX_HEADERS = 128
# Seconds a client over max_connections is told to wait: a slot frees whenever
# one of its own connections closes, which we cannot predict.
CONNECTIONS_RETRY_AFTER = 1

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class Refusal(HttpProcessingError):
    """The door refusing a connection or request head; `code` is the HTTP status."""

    def __init__(self, status: int, reason: str):
        super().__init__(code=status, message=reason)


def make_server(handler: Handler, config: Config, *, access_log: logging.Logger | None = None,
                **kwargs: Any) -> FrontServer:
    """A `web.Server` for `web.ServerRunner`, with the [front] limits applied to every connection.

    Call it with the event loop running. Extra keyword arguments go to
    `web.Server` and aiohttp's `RequestHandler` (access_log_class,
    access_log_format, auto_decompress, handler_cancellation, …).
    """
    front = config.front
    max_head = front.max_header_kb * KIB
    if max_head <= 0:
        raise ConfigError(f"[front] max_header_kb: expected at least 1, got {front.max_header_kb!r}")
    kwargs.setdefault("keepalive_timeout", front.keepalive_timeout)
    return FrontServer(
        handler,
        connections=ConnectionLimiter(front.max_connections, front.trusted_proxies),
        header_timeout=front.header_timeout,
        max_head=max_head,
        access_log=access_log,
        # aiohttp checks each line (the URL, each field) against these; the
        # whole head is counted by FrontRequestHandler.
        max_line_size=max_head,
        max_field_size=max_head,
        max_headers=MAX_HEADERS,
        **kwargs,
    )


class FrontServer(web.Server):
    """aiohttp's low-level server whose connections are `FrontRequestHandler`s."""

    def __init__(self, handler: Handler, *, connections: ConnectionLimiter, header_timeout: float,
                 max_head: int, request_factory: Any = None, handler_cancellation: bool = False,
                 loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any):
        super().__init__(handler, request_factory=request_factory,
                         handler_cancellation=handler_cancellation, loop=loop, **kwargs)
        self.connection_limiter = connections
        self.header_timeout = header_timeout
        self.max_head = max_head
        self.event_loop = loop or asyncio.get_running_loop()
        self.handler_kwargs = kwargs

    def __call__(self) -> FrontRequestHandler:
        return FrontRequestHandler(self, loop=self.event_loop, **self.handler_kwargs)


class FrontRequestHandler(RequestHandler):
    """One client connection: aiohttp's, plus the header timeout, head size and connection caps."""

    def __init__(self, manager: FrontServer, *, loop: asyncio.AbstractEventLoop, **kwargs: Any):
        super().__init__(manager, loop=loop, **kwargs)
        self._front = manager
        self._front_loop = loop
        self._address = "unknown"
        self._counted_as: str | None = None   # client key held in the connection limiter
        self._refused = False                 # a refusal is queued: ignore further bytes
        self._header_timer: asyncio.TimerHandle | None = None
        self._last_payload: Any = None        # body of the last parsed request
        self._head_bytes = 0                  # bytes of the request head in progress
        self._line_bytes = 0                  # of which the request line so far
        self._line_done = False
        self._head_tail = b""                 # last 3 bytes, to find a \r\n\r\n split over reads

    # connection lifetime

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        address = peer[0] if isinstance(peer, (tuple, list)) and peer else None
        self._address = address or "unknown"
        admission = self._front.connection_limiter.open(address)
        if admission is not None:
            self._counted_as, within = admission
            if not within:
                limit = self._front.connection_limiter.max_connections
                self._refuse(429, f"more than {limit} open connections")
                return
        self._start_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_header_timer()
        if self._counted_as is not None:
            self._front.connection_limiter.close(self._counted_as)
            self._counted_as = None
        super().connection_lost(exc)

    # reading request heads

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        awaiting_head = (self._payload_parser is None and not self._switched_protocols()
                         and (self._last_payload is None or self._last_payload.is_eof()))
        window_start, window = 0, b""
        if awaiting_head and data:  # (not while a body streams: no copying of its chunks)
            window_start = self._head_bytes - len(self._head_tail)
            window = self._head_tail + data
            self._head_bytes += len(data)
            self._head_tail = window[-3:]
            if self._request_line_too_long(data):
                self._refuse(414, f"request line longer than {self._front.max_head // KIB} KiB")
                return
        messages = self._messages
        queued = len(messages)
        super().data_received(data)
        if len(messages) > queued:
            self._head_completed(awaiting_head, window_start, window, queued)
        elif awaiting_head and data and not self._refused:
            if self._head_bytes > self._front.max_head:
                self._refuse(431, f"request head longer than {self._front.max_head // KIB} KiB")
            else:
                self._start_header_timer()

    def _switched_protocols(self) -> bool:
        """Whether the connection was upgraded (WebSocket, CONNECT): no more request heads on it."""
        # aiohttp 3.14 names it _upgraded (on BaseProtocol), 3.10 to 3.13 _upgrade.
        return bool(getattr(self, "_upgraded", None) or getattr(self, "_upgrade", False))

    def _request_line_too_long(self, data: bytes) -> bool:
        """Count the bytes of the request line (skipping empty lines before it) against the limit."""
        pos = 0
        while not self._line_done:
            end = data.find(b"\n", pos)
            if end < 0:
                self._line_bytes += len(data) - pos
                break
            self._line_bytes += end - pos
            if self._line_bytes <= 1:  # an empty line ("\r\n") before the request line
                self._line_bytes = 0
                pos = end + 1
                continue
            self._line_done = True
        return self._line_bytes > self._front.max_head

    def _head_completed(self, awaiting_head: bool, window_start: int, window: bytes, queued: int) -> None:
        """aiohttp parsed one or more request heads (or failed to): check the first one's size.

        `window` is this read with the previous read's last bytes in front;
        `window_start` is how many bytes of the head came before it.
        """
        self._stop_header_timer()
        messages = self._messages
        for index in range(queued, len(messages)):
            message = messages[index][0]
            problem = None if isinstance(message, _ErrInfo) else head_problem(message)
            if problem is not None:
                while len(messages) > index:  # a deque: no slices
                    messages.pop()
                self._refuse(400, problem)
                return
        last, payload = messages[-1]
        if isinstance(last, _ErrInfo):
            self._refused = True  # aiohttp answers 400 (431 in handle_error) and closes
            return
        if awaiting_head:
            end = window.find(b"\r\n\r\n")
            if end >= 0 and window_start + end + 4 > self._front.max_head:
                while len(messages) > queued:
                    messages.pop()
                self._refuse(431, f"request head longer than {self._front.max_head // KIB} KiB")
                return
        self._last_payload = payload
        self._head_bytes = self._line_bytes = 0
        self._line_done = False
        self._head_tail = b""

    # refusing

    def _start_header_timer(self) -> None:
        timeout = self._front.header_timeout
        if timeout > 0 and self._header_timer is None and not self._refused:
            self._header_timer = self._front_loop.call_later(timeout, self._header_timeout_expired)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout_expired(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self._refused:
            self._refuse(408, f"no complete request head within {self._front.header_timeout:g} s")

    def _refuse(self, status: int, reason: str) -> None:
        """Log once, then queue the refusal behind any request in progress; the connection closes after it."""
        if self._refused:
            return
        self._refused = True
        self._stop_header_timer()
        log.info("%s: %s: answered %d", self._address, reason, status)
        self._messages.append((_ErrInfo(status=status, exc=Refusal(status, reason), message=reason),
                               EMPTY_PAYLOAD))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if isinstance(exc, Refusal):
            return _refusal_response(exc.code, exc.message)
        if isinstance(exc, HttpProcessingError) and status == 400:
            if _is_header_size_error(exc):
                log.info("%s: request header field longer than %d KiB or too many fields: answered 431",
                         self._address, self._front.max_head // KIB)
                return _refusal_response(431)
            reason = exc.message.splitlines()[0].rstrip(":.")
            log.info("%s: bad request: %s: answered 400", self._address, reason)
            return _refusal_response(400, reason)
        return super().handle_error(request, status, exc, message)


def _is_header_size_error(exc: HttpProcessingError) -> bool:
    return isinstance(exc, LineTooLong) or "Too many headers" in exc.message


def _refusal_response(status: int, reason: str | None = None) -> web.Response:
    """The door's own plain-text refusal, with the reason when there is one."""
    phrase = HTTPStatus(status).phrase
    response = web.Response(status=status, text=f"{status} {phrase}" + (f": {reason}" if reason else "") + "\n",
                            headers={"Connection": "close", "X-Content-Type-Options": "nosniff"})
    if status == 429:
        response.headers["Retry-After"] = str(CONNECTIONS_RETRY_AFTER)
    response.force_close()
    return response
