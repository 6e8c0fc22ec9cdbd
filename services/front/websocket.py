"""WebSocket pass-through: the upstream handshake first, then messages both ways, close codes intact.

The upstream is asked first, so a refusal (401, 404, 503 while it restarts)
reaches the client as an ordinary HTTP answer rather than a socket that opens
and closes at once. The sub-protocol is the one the upstream chose. Each side
compresses on its own terms (the loopback hop never does).

Close codes pass through: whoever closes first, the other side is closed with
the same code and message, and the answer is relayed back. Codes that may
not be sent on the wire become ones that may: 1005 ("none given") 1000, 1006
(the side vanished without a close frame) 1001 "going away". Messages over
WS_MAX_MESSAGE bytes close the connection with 1009.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from services.core.errors import HTTPError

from .accesslog import Exchange
from .forwarding import Client, ForwardedPolicy
from .proxy import Proxy
from .routes import Route
from .upstream import UpstreamAddress

log = logging.getLogger("front.websocket")

WS_MAX_MESSAGE = 16 * 1024 * 1024
# The client's handshake headers that the door's own handshake with the upstream replaces.
HANDSHAKE_HEADERS = frozenset({"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
                               "sec-websocket-protocol", "sec-websocket-accept"})
NO_TIMEOUT = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0)


def is_websocket(request: web.BaseRequest) -> bool:
    connection = {token.strip().lower() for token in request.headers.get("Connection", "").split(",")}
    return request.headers.get("Upgrade", "").lower() == "websocket" and "upgrade" in connection


class UpstreamRefused(HTTPError):
    """The upstream answered the WebSocket handshake with something other than 101."""

    def __init__(self, status: int, label: str, headers: dict[str, str]):
        super().__init__(f"{label} refused the WebSocket handshake with {status}", headers=headers)
        self.status = status
        self.code = "websocket-refused"


async def relay(request: web.BaseRequest, route: Route, client: Client, exchange: Exchange,
                proxy: Proxy, forwarded: ForwardedPolicy) -> web.StreamResponse:
    """Open the upstream WebSocket, accept the client's, and pump messages until one side closes."""
    assert route.upstream is not None
    with proxy.slots.serving(route.upstream) as address:  # open WebSockets count as in flight, too
        address = proxy.balancer.order(address)[0]  # one of a daemon's instances, in turn
        return await _relay(request, route, address, client, exchange, proxy, forwarded)


async def _relay(request: web.BaseRequest, route: Route, address: UpstreamAddress, client: Client,
                 exchange: Exchange, proxy: Proxy, forwarded: ForwardedPolicy) -> web.StreamResponse:
    exchange.upstream = address.label
    headers = forwarded.upstream_headers(request, client)
    for name in HANDSHAKE_HEADERS:
        headers.popall(name, None)
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    url = address.ws_url(route.upstream_path(request.path, request.raw_path))
    try:
        upstream = await proxy.upstreams.session(address).ws_connect(
            url, headers=headers, protocols=offered, timeout=NO_TIMEOUT, autoclose=False, autoping=True,
            max_msg_size=WS_MAX_MESSAGE, compress=0)
    except aiohttp.WSServerHandshakeError as error:
        passed = {k: v for k, v in (error.headers or {}).items() if k in ("WWW-Authenticate", "Retry-After")}
        raise UpstreamRefused(error.status, address.label, passed) from None
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
        raise proxy.unreachable(address, error) from None

    downstream = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                       autoclose=False, autoping=True, max_msg_size=WS_MAX_MESSAGE)
    try:
        await downstream.prepare(request)
    except BaseException:
        await upstream.close()
        raise
    exchange.status = 101
    try:
        await _pump_until_closed(downstream, upstream)
    finally:
        for side in (upstream, downstream):
            if not side.closed:
                with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
                    await side.close(code=WSCloseCode.GOING_AWAY)
    return downstream


async def _pump_until_closed(client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    to_upstream = asyncio.create_task(_pump(client, upstream))
    to_client = asyncio.create_task(_pump(upstream, client))
    try:
        done, _ = await asyncio.wait({to_upstream, to_client}, return_when=asyncio.FIRST_COMPLETED)
        first = done.pop()
        closing, other = (upstream, client) if first is to_upstream else (client, upstream)
        code, message = _sendable(*_result(first))
        # Tell the other side, with the same code, and relay its answer back.
        with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
            await closing.close(code=code, message=message)
        answer, _ = _sendable(closing.close_code or code, b"")
        if not other.closed:
            with contextlib.suppress(ConnectionError, aiohttp.ClientError, RuntimeError):
                await other.close(code=answer, message=b"")
    finally:
        for task in (to_upstream, to_client):
            task.cancel()
        await asyncio.gather(to_upstream, to_client, return_exceptions=True)


async def _pump(source, sink) -> tuple[int, bytes]:
    """Copy messages until `source` closes; returns its close code and message."""
    while True:
        msg = await source.receive()
        if msg.type is WSMsgType.TEXT:
            await sink.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await sink.send_bytes(msg.data)
        elif msg.type is WSMsgType.CLOSE:
            return msg.data, (msg.extra or "").encode() if isinstance(msg.extra, str) else (msg.extra or b"")
        elif msg.type is WSMsgType.ERROR:
            code = WSCloseCode.MESSAGE_TOO_BIG if "too big" in str(msg.data).lower() else WSCloseCode.INTERNAL_ERROR
            return code, b""
        elif msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED):
            return source.close_code or WSCloseCode.ABNORMAL_CLOSURE, b""


def _result(task: asyncio.Task) -> tuple[int, bytes]:
    try:
        return task.result()
    except (ConnectionError, aiohttp.ClientError, RuntimeError) as error:
        log.info("websocket: a side went away: %s", error)
        return WSCloseCode.GOING_AWAY, b""


def _sendable(code: int, message: bytes) -> tuple[int, bytes]:
    """A close code that may go on the wire (RFC 6455 §7.4.1)."""
    if code == 1005:
        code = WSCloseCode.OK
    elif code == 1006:
        code = WSCloseCode.GOING_AWAY
    elif not (1000 <= code <= 4999) or code in (1004, 1015):
        code = WSCloseCode.INTERNAL_ERROR
    return code, message[:123]
