"""Passing one HTTP request through to its upstream and the answer back, streaming both ways.

Neither body is ever held whole: the request body is read from the client in
the chunks it arrives in and written upstream as they come (aiohttp's writer
drains, so a slow upstream slows the client down), and the response is copied
the same way. Memory per request stays at a few socket buffers whatever the
size of the transfer.

Failures become errors with a reason, raised before the response starts:
413 (body over the limit), 408 (client stopped sending), 502 (upstream
refused, or closed without answering, and nothing is restarting it), 503 with
Retry-After (its supervisor is restarting it), 504 (no answer within
idle_timeout). A client that hangs up before the response starts is
`ClientGone`, logged as 499 as nginx does. Once the response has started
there is no status left to send: the client's connection is closed
mid-body, so it sees a truncated transfer instead of a complete-looking one.
"""
from __future__ import annotations

import asyncio
import errno
import logging
from typing import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from services.core.config import Config
from services.core.errors import (BadGateway, BadRequest, GatewayTimeout, HTTPError, PayloadTooLarge, RequestTimeout,
                                  ServiceUnavailable)

from .accesslog import Exchange
from .forwarding import Client, ForwardedPolicy, end_to_end
from .routes import Route
from .slots import Slots
from .upstream import Balancer, UpstreamAddress, Upstreams, supervision

log = logging.getLogger("front.proxy")

# Safe requests (RFC 9110 §9.2.1; PROPFIND and REPORT read only, RFC 4918 §9.1, RFC 3253 §3.6), which may
# be sent again when the upstream dropped the connection before answering: on a fresh connection, or to
# another instance of the daemon. Their body, if any, is held for that up to REPLAY_BODY_LIMIT; a larger
# one streams through and is not replayed.
REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS", "PROPFIND", "REPORT"})
REPLAY_BODY_LIMIT = 256 * 1024

Decorate = Callable[[CIMultiDict], None]


class ClientGone(ConnectionResetError):
    """The client closed its connection mid-request; nobody is left to answer."""


class RequestBody:
    """The client's request body as an async iterator, with the limit and idle timeout enforced.

    A failure is remembered in `failure`: aiohttp's client wraps whatever the
    iterator raises into its own connection error, and the proxy needs to
    know it was the client's fault (413, 408) and not the upstream's.
    """

    def __init__(self, request: web.BaseRequest, limit: int | None, idle_timeout: float | None):
        self.request = request
        self.limit = limit
        self.idle_timeout = idle_timeout
        self.received = 0
        self.failure: Exception | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        content = self.request.content
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout):
                    chunk = await content.readany()
            except TimeoutError:
                self.failure = RequestTimeout(f"the client sent no request body bytes for {self.idle_timeout:g} s")
                raise self.failure from None
            except (ConnectionError, aiohttp.ClientPayloadError, EOFError) as error:
                self.failure = ClientGone(f"client went away while sending the body: {error}")
                raise self.failure from None
            except HttpProcessingError as error:  # a body cut short, broken chunked encoding
                transport = self.request.transport
                if transport is None or transport.is_closing():
                    self.failure = ClientGone(f"client went away while sending the body: {error.message}")
                else:
                    self.failure = BadRequest(f"malformed request body: {error.message}")
                raise self.failure from None
            if not chunk:
                return
            self.received += len(chunk)
            if self.limit is not None and self.received > self.limit:
                self.failure = too_large(self.limit)
                raise self.failure
            yield chunk


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request body over the limit of {limit // 1024} KiB for this route")


class Proxy:
    """Forwards requests to their route's upstream through the upstream's keep-alive pool."""

    def __init__(self, config: Config, upstreams: Upstreams, forwarded: ForwardedPolicy, slots: Slots):
        self.upstreams = upstreams
        self.balancer = Balancer()
        self.forwarded = forwarded
        self.slots = slots
        self.data_dir = config.data_dir
        self.retry_after = max(1, config.front.retry_after)
        self.idle_timeout = config.front.idle_timeout or None
        self.connect_timeout = config.front.connect_timeout

    async def forward(self, request: web.BaseRequest, route: Route, client: Client, exchange: Exchange,
                      body_limit: int | None, decorate: Decorate) -> web.StreamResponse:
        assert route.upstream is not None
        with self.slots.serving(route.upstream) as address:  # a slot label becomes blue or green here
            return await self._forward(request, route, address, client, exchange, body_limit, decorate)

    async def _forward(self, request: web.BaseRequest, route: Route, address: UpstreamAddress, client: Client,
                       exchange: Exchange, body_limit: int | None, decorate: Decorate) -> web.StreamResponse:
        exchange.upstream = address.label
        if body_limit is not None and (request.content_length or 0) > body_limit:
            raise too_large(body_limit)
        if request.headers.get("Expect", "").lower() == "100-continue" and request.body_exists:
            # What aiohttp's router does for web.Application; the low-level server leaves it to us.
            await request.writer.write(b"HTTP/%d.%d 100 Continue\r\n\r\n" % request.version)
        headers = self.forwarded.upstream_headers(request, client)
        target = route.upstream_path(request.path, request.raw_path)
        upstream = await self._send(request, self.balancer.order(address), target, headers, body_limit, exchange)
        try:
            return await self._relay(request, upstream, exchange, decorate)
        finally:
            if upstream.content.is_eof():
                upstream.release()  # back to the keep-alive pool
            else:
                upstream.close()

    async def _send(self, request: web.BaseRequest, candidates: list[UpstreamAddress], target: str,
                    headers: CIMultiDict, body_limit: int | None, exchange: Exchange) -> aiohttp.ClientResponse:
        """The upstream's answer from the first candidate that gives one.

        A candidate that refuses the connection is passed over whatever the request: nothing was
        sent. One that drops the connection before answering (a kept-alive connection it had
        closed, or an instance killed while it worked) is retried on the next candidate (on the
        same upstream, once, when there is only one) only for a safe request whose body, if any,
        is held here: any other may have been carried out, and cannot be sent again.
        """
        body = RequestBody(request, body_limit, self.idle_timeout) if request.body_exists else None
        data: bytes | None = None
        replayable = request.method in REPLAYABLE and (body is None or (
            request.content_length is not None and request.content_length <= REPLAY_BODY_LIMIT))
        if replayable and body is not None:
            data = b"".join([chunk async for chunk in body.chunks()])  # 408, 413, ClientGone raise here
        tries = candidates if len(candidates) > 1 else candidates * 2
        for attempt, address in enumerate(tries, 1):
            exchange.upstream = address.label
            try:
                response = await self.upstreams.session(address).request(
                    request.method, address.url(target), headers=headers,
                    data=data if data is not None else body.chunks() if body else None,
                    allow_redirects=False, compress=None, proxy=None)
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                if body is not None and body.failure is not None:
                    raise body.failure from None
                if isinstance(error, aiohttp.ServerTimeoutError) and not isinstance(
                        error, aiohttp.ConnectionTimeoutError):
                    raise GatewayTimeout(f"{address.label} sent no answer within {self.idle_timeout:g} s") from None
                if isinstance(error, asyncio.TimeoutError) and not isinstance(error, aiohttp.ServerTimeoutError):
                    raise GatewayTimeout(f"{address.label} did not answer within the total timeout") from None
                # Refused, or no connection within connect_timeout (a hung instance's backlog is full): unsent.
                refused = isinstance(error, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError))
                dropped = isinstance(error, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)) and not refused
                unsent = refused and len(candidates) > 1
                if len(candidates) > 1 and (refused or dropped):
                    self.balancer.failed(address, describe(error, self.connect_timeout))
                if attempt < len(tries) and (unsent or (dropped and replayable)):
                    continue
                raise self.unreachable(address, error) from None
            if len(candidates) > 1:
                self.balancer.answered(address)
            return response
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _relay(self, request: web.BaseRequest, upstream: aiohttp.ClientResponse, exchange: Exchange,
                     decorate: Decorate) -> web.StreamResponse:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        headers = end_to_end(upstream.headers)
        decorate(headers)
        response.headers.extend(headers)
        # Hung up while the upstream was thinking: nginx's 499, not a status nobody received.
        if request.transport is None or request.transport.is_closing():
            raise ClientGone("client went away before the response")
        try:
            await response.prepare(request)
        except ConnectionError:
            raise ClientGone("client went away before the response") from None
        exchange.status = upstream.status
        reader = upstream.content
        while True:
            try:
                chunk = await reader.readany()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
                # Too late for a status: cut the client off so it sees a truncated body.
                log.warning("%s %s: %s failed mid-response after %d bytes: %s", request.method, request.path,
                            exchange.upstream, exchange.sent, describe(error, self.idle_timeout))
                if request.transport is not None:
                    request.transport.close()
                return response
            if not chunk:
                return response
            try:
                await response.write(chunk)
            except ConnectionError:
                raise ClientGone("client went away during the response") from None
            exchange.sent += len(chunk)

    def unreachable(self, address: UpstreamAddress, error: BaseException) -> HTTPError:
        """502 or 503 for a failed connection, from what the supervisor says about the upstream."""
        why = describe(error, self.connect_timeout)
        status = supervision(address, self.data_dir)
        if status.state in {"running", "restarting"}:
            if status.state == "running":
                reason = f"{address.label} is starting or restarting ({why})"
            else:
                reason = f"{status.reason} ({why})"
            return ServiceUnavailable(f"{reason}; try again in {self.retry_after} s",
                                      headers={"Retry-After": str(self.retry_after)})
        if status.state == "not-installed":
            return ServiceUnavailable(status.reason)
        if status.state == "down":
            return BadGateway(f"{status.reason} ({why})")
        return BadGateway(f"cannot reach {address.key}: {why}")


def describe(error: BaseException, timeout: float | None = None) -> str:
    """A few words for what went wrong talking to an upstream."""
    if isinstance(error, aiohttp.ConnectionTimeoutError):
        return f"no connection within {timeout:g} s" if timeout else "connection timed out"
    if isinstance(error, aiohttp.ServerTimeoutError):
        return f"silent for {timeout:g} s" if timeout else "timed out"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "closed the connection without answering"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "the response body was cut short"
    code = getattr(error, "errno", None) or getattr(getattr(error, "os_error", None), "errno", None)
    if code == errno.ECONNREFUSED:
        return "connection refused"
    if code == errno.ENOENT:
        return "no such socket"
    if code in (errno.ECONNRESET, errno.EPIPE):
        return "connection reset"
    return str(error) or type(error).__name__
