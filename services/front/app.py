"""The front end: one catch-all handler on aiohttp's low-level server, and its startup.

There is no aiohttp router: every request goes through `Front.handle`, which
decides the client address, applies the rate limit (limits.py: anonymous and
unconfirmed credentials only), finds the route, answers
CORS preflights, redirects and /healthz itself, and passes everything else to
the proxy (or the WebSocket relay). Errors become JSON answers with a reason
in one place, `Front.error_response`, like core.http's middleware does for
the other daemons.
"""
from __future__ import annotations

import asyncio
import logging
import signal
import time

from aiohttp import web
from multidict import CIMultiDict

from services.core.config import Config
from services.core.errors import HTTPError, NotFound
from services.core.http import AUTHENTICATED_HEADER, ListenAddress, remove_stale_socket

from .accesslog import AccessLog, Exchange
from .cors import CorsPolicy
from .forwarding import Client, ForwardedPolicy
from .headers import apply_defaults, security_headers
from .health import Health
from .limits import Admission, RequestLimiter
from .protocol import make_server
from .proxy import ClientGone, Proxy
from .proxy_listener import ProxyProtocolListener, listen_address as proxy_protocol_address
from .routes import Route, RouteTable
from .slots import Slots
from .tls import TLSContext
from .upstream import Upstreams
from .websocket import is_websocket, relay

log = logging.getLogger("front")

# On SIGTERM, in-flight requests get this long to finish before connections are cut;
# under the supervisor's stop_timeout (10 s), so we exit before it has to KILL us.
SHUTDOWN_SECONDS = 5.0


class Front:
    """Everything one request needs: routes, upstream pools, limits, CORS, TLS, the access log."""

    def __init__(self, config: Config, access_log: AccessLog | None = None):
        front = config.front
        self.tls = TLSContext(config.resolve(front.tls_cert), config.resolve(front.tls_key)) \
            if front.tls_cert or front.tls_key else None
        self.routes = RouteTable.from_config(config)
        addresses = self.routes.upstreams()
        self.upstreams = Upstreams(config, addresses)
        self.slots = Slots(config.data_dir, self.routes.slotted)
        self.forwarded = ForwardedPolicy(front.trusted_proxies)
        self.limiter = RequestLimiter(config)
        self.proxy = Proxy(config, self.upstreams, self.forwarded, self.slots)
        self.health = Health(config, addresses, self.upstreams, self.slots)
        self.cors = {id(route): CorsPolicy.from_spec(route.cors, where=f"{route.origin}: cors")
                     for route in self.routes.routes}
        self.security = {tls: security_headers(tls, front.hsts_max_age) for tls in (False, True)}
        self.access_log = access_log or AccessLog()
        self.proxy_protocol_address = proxy_protocol_address(config)  # the tunnel agent's door, if any

    async def start(self) -> None:
        await self.upstreams.start()

    async def close(self) -> None:
        await self.upstreams.close()

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        exchange = Exchange(started=time.monotonic())
        client = self.forwarded.client(request)
        exchange.client = client.address
        route: Route | None = None
        try:
            admission = self.limiter.admit(client.address, request.headers, request.cookies)
            route = self.routes.match(request.headers.get("Host"), request.path, request.method)
            if route is None:
                raise NotFound(f"no route for {request.headers.get('Host', '(no host)')}{request.path}; "
                               "add a [[route]] or a service route in hearth.toml")
            response = await self.answer(request, route, client, exchange, admission)
        except ClientGone:
            return self.abandon(request, exchange, exchange.status or 499)  # nginx's "client closed request"
        except HTTPError as error:
            response = self.error_response(request, error, route, client)
            if error.status == 408:
                # The client stopped sending: answer and hang up now, rather than linger
                # (aiohttp reads on for 10 s after a refused body) for bytes that won't come.
                await response.prepare(request)
                await response.write_eof()
                return self.abandon(request, exchange, 408, sent=response.content_length or 0)
        except Exception:
            log.exception("%s %s: unhandled error", request.method, request.path)
            if exchange.status:  # the answer had started: all we can do is cut it short
                return self.abandon(request, exchange, exchange.status)
            response = self.error_response(request, HTTPError("internal error; the front end's log has details"),
                                           route, client)
        if not response.prepared:
            if request.transport is None or request.transport.is_closing():
                return self.abandon(request, exchange, 499)  # hung up while we worked on the answer
            exchange.status = response.status
            exchange.sent = response.content_length or 0
        self.access_log.log(request, exchange)
        return response

    def abandon(self, request: web.BaseRequest, exchange: Exchange, status: int, sent: int | None = None
                ) -> web.Response:
        """No (further) answer can be sent: log the request, close the connection.

        aiohttp gets a response whose writing fails quietly on the closed
        transport; raising instead would log a traceback per hung-up client.
        What was written before is still delivered: closing flushes first.
        """
        exchange.status = status
        if sent is not None:
            exchange.sent = sent
        self.access_log.log(request, exchange)
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=status)

    async def answer(self, request: web.BaseRequest, route: Route, client: Client,
                     exchange: Exchange, admission: Admission) -> web.StreamResponse:
        if route.kind == "health":
            return await self.health.respond(request)
        policy = self.cors[id(route)]
        if policy is not None:
            preflight = policy.preflight(request)
            if preflight is not None:
                return preflight
        if route.wants_slash(request.path):
            base, sep, query = request.raw_path.partition("?")
            return self.decorated(request, route, client, web.Response(
                status=308, headers={"Location": base + "/" + sep + query}))
        if route.kind == "redirect":
            return self.decorated(request, route, client, web.Response(
                status=route.redirect_status, headers={"Location": route.location(request.raw_path)}))
        if is_websocket(request):
            return await relay(request, route, client, exchange, self.proxy, self.forwarded)

        def decorate(headers: CIMultiDict) -> None:
            admission.confirmed = bool(headers.popall(AUTHENTICATED_HEADER, ()))
            self.decorate(request, route, client, headers)

        response = await self.proxy.forward(
            request, route, client, exchange, self.limiter.body_limit(route.max_body_kb), decorate)
        self.limiter.settle(admission, exchange.status)
        return response

    def decorate(self, request: web.BaseRequest, route: Route, client: Client, headers: CIMultiDict) -> None:
        """CORS headers for the route's policy, then the security headers the response lacks."""
        policy = self.cors[id(route)]
        if policy is not None:
            policy.decorate(request, headers)
        if route.security_headers:
            apply_defaults(headers, self.security[client.proto == "https"])

    def decorated(self, request: web.BaseRequest, route: Route | None, client: Client,
                  response: web.Response) -> web.Response:
        if route is not None:
            self.decorate(request, route, client, response.headers)
        return response

    def error_response(self, request: web.BaseRequest, error: HTTPError, route: Route | None,
                       client: Client) -> web.Response:
        """The JSON answer for an error, logged once with its reason."""
        if error.status >= 500:
            log.warning("%s %s -> %d: %s", request.method, request.path, error.status, error.reason)
        else:
            log.info("%s %s -> %d: %s", request.method, request.path, error.status, error.reason)
        response = web.json_response({"error": error.code, "reason": error.reason}, status=error.status)
        response.headers.update(error.headers)
        if error.status in (408, 413) or not request.content.is_eof():
            # The body was refused or never read: don't look for the next request in it.
            response.force_close()
        return self.decorated(request, route, client, response)


def build_server(front: Front, config: Config) -> web.Server:
    """The low-level server with the door's connection limits (protocol.make_server: 408, 414, 431, 429).

    Request bodies pass through as sent: decompressing a gzip upload here would
    forward plain bytes under a Content-Encoding: gzip header. The access log is
    ours (accesslog.py), written by `Front.handle`, so aiohttp's is off.
    """
    return make_server(front.handle, config, access_log=None, auto_decompress=False)


async def serve(front: Front, config: Config, address: ListenAddress) -> None:
    """Run the front end on `address` until SIGTERM or SIGINT; SIGHUP reloads the certificate and slots."""
    await front.start()
    runner = web.ServerRunner(build_server(front, config), shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    runner_cleanups: list = []
    # Handlers first: whoever sees "serving on" may send SIGTERM at once, and must get a clean stop.
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: reload(front))
    try:
        if address.path:
            address.path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_socket(address.path)
            site: web.BaseSite = web.UnixSite(runner, str(address.path))
        else:
            site = web.TCPSite(runner, address.host, address.port,
                               ssl_context=front.tls.ssl_context if front.tls else None)
        await site.start()
        log.info("serving on %s%s with %d routes", address, " (TLS)" if front.tls else "",
                 len(front.routes.routes))
        if front.proxy_protocol_address:
            proxied = ProxyProtocolListener(front.proxy_protocol_address, runner.server,
                                            front.tls.ssl_context if front.tls else None)
            await proxied.start()
            runner_cleanups.append(proxied.close)
            log.info("serving PROXY-protocol connections on %s:%d", *front.proxy_protocol_address)
        await stopped.wait()
        log.info("stopping")
    finally:
        for cleanup in runner_cleanups:
            await cleanup()
        await runner.cleanup()
        await front.close()


def reload(front: Front) -> None:
    """SIGHUP: take up a renewed TLS certificate and the slot records; routes and the rest need a restart."""
    front.slots.reload()
    if front.tls is None:
        log.info("SIGHUP: no TLS certificate to reload; configuration changes take "
                 "`hearth service front restart`")
    else:
        front.tls.reload()
