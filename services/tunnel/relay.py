"""`hearth relay --config relay.toml`: the public side of the tunnel.

Three listeners and a status page:
- control (TLS, the relay's certificate): agents dial in, authenticate with
  their secret and join their pool (pool.py);
- public ("443"): read only the ClientHello, route by its SNI to the agent
  that serves the name, pass every byte through untouched: TLS ends at home;
- http ("80", optional): redirect to https by Host, for the names agents serve
  (a Host nobody serves gets 421);
- status (loopback only): JSON with agents, hostnames, streams and bytes.

The exception is a hostname in relay.toml's [terminate] tables: the relay
ends TLS for it with its own certificate (a loopback TLS server takes the
connection from the ClientHello on) and, on :443 and :80 alike, passes its
plain HTTP by Host to the agent, telling it so; the front end then knows the
bytes are plain and whether the client used https.

Every refusal is one log line with the client's address and the reason; the
relay itself keeps serving. HEARTH_RELAY_TAP=FILE appends every byte passed
through to FILE (a debugging aid the tests use to prove nothing is plaintext).
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import json
import logging
import os
import signal
import ssl
import time
from typing import Any

from aiohttp import web

from services.core.errors import ConfigError

from .clienthello import NotAClientHello, read_client_hello
from .hostnames import covered, normalise
from .pool import AgentPool, PoolConnection
from .relay_config import RelayConfig, load_relay_config
from .request_head import NotARequest, read_request_head, respond
from .splice import close_quietly, splice
from .wire import MAX_LINE, WireError, encode, read_message

log = logging.getLogger("relay")

TAP_ENV = "HEARTH_RELAY_TAP"
# Connections turned away for want of room come in floods: one summary line per this many seconds.
BUSY_LOG_SECONDS = 10.0

Address = tuple[str, int]


class Relay:
    def __init__(self, config: RelayConfig):
        self.config = config
        self.pools = {agent.name: AgentPool(agent) for agent in config.agents}
        self.refused: dict[str, int] = {}
        tap_path = os.environ.get(TAP_ENV)
        self.tap_file = open(tap_path, "ab", buffering=0) if tap_path else None
        self.control_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.control_context.minimum_version = ssl.TLSVersion.TLSv1_2
        # The agent resumes its pool connections with one ticket at a time: OpenSSL's default of
        # two per handshake would seal and send a second one for nothing on every replacement dial.
        self.control_context.num_tickets = 1
        try:
            self.control_context.load_cert_chain(config.tls_cert, config.tls_key)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"{config.path}: tls_cert/tls_key: {error}") from None
        self.terminate_context = terminating_context(config)
        self.terminator: Address | None = None          # the loopback TLS server, once started
        self.terminating: dict[int, tuple[Address, Address]] = {}   # its clients' real addresses by port
        self.unrouted_now = 0              # connections that have not yet said where they go
        self.turned_away = 0               # ... refused for want of room since the last line saying so
        self.turned_away_logged = 0.0

    # SIGHUP

    # What a running relay cannot change: its sockets, the control certificate, the [terminate] server.
    FIXED = ("public_listen", "http_listen", "control_listen", "status_listen", "tls_cert", "tls_key", "terminate")

    def reload(self) -> None:
        """Take up relay.toml's agents (secrets, hostnames, limits) and timeouts; a broken file changes nothing.

        An agent whose secrets changed (a rotation finished) loses its idle connections, so
        it proves its current secret again; a removed agent loses them and its pool.
        """
        try:
            new = load_relay_config(self.config.path)
        except ConfigError as error:
            log.error("SIGHUP: %s; still running on the config as it was", error)
            return
        if any(getattr(new, key) != getattr(self.config, key) for key in self.FIXED):
            log.warning("SIGHUP: listen addresses, tls_cert/tls_key and [terminate] change only on a restart")
        new = dataclasses.replace(new, **{key: getattr(self.config, key) for key in self.FIXED})
        specs = {spec.name: spec for spec in new.agents}
        for name, pool in list(self.pools.items()):
            spec = specs.get(name)
            if spec is None or spec.secrets != pool.spec.secrets:
                for connection in pool.idle:
                    connection.writer.close()
            if spec is None:
                del self.pools[name]
            else:
                pool.spec = spec
        for name, spec in specs.items():
            self.pools.setdefault(name, AgentPool(spec))
        self.config = new
        log.info("SIGHUP: reloaded %s: agents %s", new.path, ", ".join(sorted(specs)))

    # refusals

    def refuse(self, kind: str, peer: str, reason: str) -> None:
        self.refused[kind] = self.refused.get(kind, 0) + 1
        log.warning("%s: refused: %s", peer, reason)

    def no_room(self, writer: asyncio.StreamWriter) -> bool:
        """True (and the connection dropped) when max_unrouted connections already wait to be routed.

        Scanners and floods open connections that never say anything; each is bounded by
        hello_timeout, and this bounds how many at once, so they cannot use up the relay's
        file descriptors and the agents' clients still get in.
        """
        if self.unrouted_now < self.config.max_unrouted:
            return False
        writer.transport.abort()
        self.refused["busy"] = self.refused.get("busy", 0) + 1
        self.turned_away += 1
        now = time.monotonic()
        if now - self.turned_away_logged >= BUSY_LOG_SECONDS:
            log.warning("%s: refused: %d connections already wait to say where they go (max_unrouted %d); "
                        "%d turned away since the last such line", _peer(writer), self.unrouted_now,
                        self.config.max_unrouted, self.turned_away)
            self.turned_away, self.turned_away_logged = 0, now
        return True

    @contextlib.asynccontextmanager
    async def unrouted(self):
        """The phase before a connection is routed: counted against max_unrouted, bounded by hello_timeout."""
        self.unrouted_now += 1
        try:
            async with asyncio.timeout(self.config.hello_timeout):
                yield
        finally:
            self.unrouted_now -= 1

    # the control listener

    async def handle_agent(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        if self.no_room(writer):
            return
        try:
            async with self.unrouted():
                hello = await read_message(reader)
        except (WireError, TimeoutError, OSError, ConnectionError) as error:
            self.refuse("agent", peer, f"agent hello: {str(error) or 'timed out'}")
            await close_quietly(writer)
            return
        pool, why = self.authenticate(hello)
        if pool is None:
            self.refuse("agent", peer, why)
            writer.write(encode({"ok": False, "error": why}))
            await close_quietly(writer)
            return
        writer.write(encode({"ok": True}))
        try:
            await writer.drain()
        except (OSError, ConnectionError):
            await close_quietly(writer)
            return
        await pool.add(PoolConnection(reader, writer, peer), {normalise(str(h)) for h in hello["hostnames"]})

    def authenticate(self, hello: dict[str, Any] | None) -> tuple[AgentPool | None, str]:
        if not hello or not isinstance(hello.get("agent"), str) or not isinstance(hello.get("secret"), str) \
                or not isinstance(hello.get("hostnames"), list):
            return None, "agent hello without agent, secret and hostnames"
        pool = self.pools.get(hello["agent"])
        given = hello["secret"].encode()
        # Compare against every secret (several are valid while one is rotated), always all of them.
        matches = [hmac.compare_digest(given, secret) for secret in (pool.spec.secrets if pool else ())]
        if pool is None or not any(matches):
            return None, f"agent {hello['agent'][:64]!r}: unknown agent or wrong secret"
        hostnames = {normalise(str(h)) for h in hello["hostnames"]}
        foreign = {h for h in hostnames if not covered(pool.spec.hostnames, h)}
        if foreign:
            return None, f"agent {pool.spec.name!r} may not serve {', '.join(sorted(foreign))}"
        return pool, ""

    # the public listener

    async def handle_public(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        if self.no_room(writer):
            return
        try:
            async with self.unrouted():
                hello = await read_client_hello(reader, self.config.max_hello_bytes)
        except TimeoutError:
            self.refuse("slow", peer, f"no whole ClientHello within {self.config.hello_timeout:g} s")
            await close_quietly(writer)
            return
        except NotAClientHello as error:
            self.refuse("garbage", peer, str(error))
            await close_quietly(writer)
            return
        except (OSError, ConnectionError):
            await close_quietly(writer)
            return
        if hello.server_name in self.config.terminate:
            await self.terminate_tls(hello.raw, reader, writer, peer)
            return
        pool = self.route(hello.server_name)
        if pool is None:
            self.refuse("sni", peer, f"no agent serves {hello.server_name!r}" if hello.server_name
                        else "ClientHello without a server name (SNI)")
            await close_quietly(writer)
            return
        await self.carry(pool, hello.server_name, hello.raw, reader, writer, peer, _addresses(writer))

    async def carry(self, pool: AgentPool, hostname: str, first_bytes: bytes, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, peer: str, addresses: tuple[Address, Address],
                    terminated: str | None = None) -> None:
        """Pass one public connection to the agent, within its stream limit."""
        if pool.open_streams >= pool.spec.max_streams:
            self.refuse("limit", peer, f"agent {pool.spec.name!r} has {pool.open_streams} open streams "
                        f"(max_streams {pool.spec.max_streams})")
            await close_quietly(writer)
            return
        pool.open_streams += 1
        try:
            await self.pass_through(pool, hostname, first_bytes, reader, writer, peer, addresses, terminated)
        finally:
            pool.open_streams -= 1

    def route(self, server_name: str | None) -> AgentPool | None:
        if not server_name:
            return None
        spec = self.config.agent_for(server_name)
        pool = self.pools.get(spec.name) if spec else None
        return pool if pool is not None and covered(pool.served, server_name) else None

    async def pass_through(self, pool: AgentPool, hostname: str, first_bytes: bytes,
                           reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str,
                           addresses: tuple[Address, Address], terminated: str | None) -> None:
        connection = await pool.take(self.config.wait_for_pool)
        if connection is None:
            self.refuse("pool", peer, f"agent {pool.spec.name!r} has no free connection "
                        f"(waited {self.config.wait_for_pool:g} s)")
            await close_quietly(writer)
            return
        (client, server) = addresses
        handover = {"client": client[0], "port": client[1], "hostname": hostname,
                    "server": server[0], "server_port": server[1]}
        if terminated:
            handover["terminated"] = terminated   # plain HTTP follows; the client spoke `terminated`
        header = encode(handover)
        pool.streams_total += 1
        pool.bytes.inbound += len(first_bytes)
        self.tap("in", first_bytes)
        try:
            connection.writer.write(header + first_bytes)
            await connection.writer.drain()
        except (OSError, ConnectionError) as error:
            log.warning("%s: agent %s connection failed: %s", peer, pool.spec.name, error)
            await close_quietly(writer)
            await close_quietly(connection.writer)
            return
        await splice((reader, writer), (connection.reader, connection.writer),
                     idle_timeout=self.config.idle_timeout, counter=pool.bytes,
                     tap=self.tap if self.tap_file else None)

    def tap(self, direction: str, data: bytes) -> None:
        if self.tap_file is not None:
            self.tap_file.write(data)

    # the status page

    def status(self) -> dict:
        return {"agents": {name: pool.status() for name, pool in self.pools.items()},
                "refused": dict(self.refused), "unrouted": self.unrouted_now}

    async def status_page(self, request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(self.status(), indent=1) + "\n", content_type="application/json")

    # plain HTTP: the :80 listener, and what the relay's own TLS server decrypted

    async def handle_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.no_room(writer):
            await self.serve_http(reader, writer, _addresses(writer), scheme="http")

    async def serve_http(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         addresses: tuple[Address, Address], scheme: str) -> None:
        """Route one plain connection by its first request's Host: pass it on, redirect it, or refuse it."""
        peer = "%s:%d" % addresses[0]
        try:
            async with self.unrouted():
                head = await read_request_head(reader, self.config.max_hello_bytes)
        except TimeoutError:
            self.refuse("slow", peer, f"{scheme}: no whole request head within {self.config.hello_timeout:g} s")
            await close_quietly(writer)
            return
        except NotARequest as error:
            self.refuse("garbage", peer, f"{scheme}: {error}")
            writer.write(respond(error.connection, 400, "not an HTTP request\n"))
            await close_quietly(writer)
            return
        except (OSError, ConnectionError):
            await close_quietly(writer)
            return
        if head.host in self.config.terminate:
            pool = self.route(head.host)
            if pool is None:
                log.warning("%s: %s://%s: its agent is not connected: answered 502", peer, scheme, head.host)
                writer.write(head.answer(502, "this site's home is not connected\n"))
                await close_quietly(writer)
                return
            await self.carry(pool, head.host, head.raw, reader, writer, peer, addresses, terminated=scheme)
            return
        if scheme == "http" and self.config.agent_for(head.host) is not None:
            writer.write(head.answer(308, "", [("Location", f"https://{head.host}{head.target}")]))
        else:
            self.refuse("host", peer, f"{scheme}: no site named {head.host[:64]!r} here: answered 421")
            writer.write(head.answer(421, "no site by that name here\n"))
        await close_quietly(writer)

    async def terminate_tls(self, first_bytes: bytes, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter, peer: str) -> None:
        """Hand a [terminate] hostname's connection, ClientHello and all, to the relay's own TLS server."""
        try:
            inner_reader, inner_writer = await asyncio.open_connection(*self.terminator)
        except OSError as error:
            log.error("%s: the relay's own TLS server is unreachable: %s", peer, error)
            await close_quietly(writer)
            return
        port = inner_writer.get_extra_info("sockname")[1]
        self.terminating[port] = _addresses(writer)
        try:
            inner_writer.write(first_bytes)
            await splice((reader, writer), (inner_reader, inner_writer), idle_timeout=self.config.idle_timeout)
        finally:
            self.terminating.pop(port, None)

    async def handle_terminated(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        addresses = self.terminating.get((writer.get_extra_info("peername") or ("", 0))[1])
        if addresses is None:   # not one the relay handed over itself
            await close_quietly(writer)
            return
        await self.serve_http(reader, writer, addresses, scheme="https")


def terminating_context(config: RelayConfig) -> ssl.SSLContext | None:
    """The TLS server context for [terminate] hostnames: each name gets its own certificate by SNI."""
    contexts: dict[str, ssl.SSLContext] = {}
    for hostname, (cert, key) in config.terminate.items():
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        try:
            context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as error:
            raise ConfigError(f"{config.path}: [terminate.{hostname!r}]: {error}") from None
        contexts[hostname] = context
    if not contexts:
        return None

    def by_server_name(connection: ssl.SSLObject, server_name: str | None, _: ssl.SSLContext) -> None:
        chosen = contexts.get((server_name or "").rstrip(".").lower())
        if chosen is not None:
            connection.context = chosen

    default = next(iter(contexts.values()))
    default.sni_callback = by_server_name
    return default


def _addresses(writer: asyncio.StreamWriter) -> tuple[Address, Address]:
    """(client, server) of an accepted connection, as the agent's PROXY header will name them."""
    client = writer.get_extra_info("peername") or ("0.0.0.0", 0)
    server = writer.get_extra_info("sockname") or ("0.0.0.0", 0)
    return (client[0], client[1]), (server[0], server[1])


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unknown"


async def run_relay(config: RelayConfig) -> None:
    """Serve until SIGTERM or SIGINT."""
    relay = Relay(config)
    # Handlers first: whoever sees the relay's log line may stop it at once, and must get a clean stop.
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    loop.add_signal_handler(signal.SIGHUP, relay.reload)
    servers = [
        # Each TLS handshake here is bounded by hello_timeout; max_unrouted counts from the login on.
        await asyncio.start_server(relay.handle_agent, config.control_listen.host, config.control_listen.port,
                                   ssl=relay.control_context, ssl_handshake_timeout=config.hello_timeout,
                                   limit=MAX_LINE),
        await asyncio.start_server(relay.handle_public, config.public_listen.host, config.public_listen.port),
    ]
    if config.http_listen is not None:
        servers.append(await asyncio.start_server(relay.handle_http, config.http_listen.host,
                                                  config.http_listen.port))
    if relay.terminate_context is not None:
        terminator = await asyncio.start_server(relay.handle_terminated, "127.0.0.1", 0,
                                                ssl=relay.terminate_context,
                                                ssl_handshake_timeout=config.hello_timeout)
        servers.append(terminator)
        relay.terminator = terminator.sockets[0].getsockname()[:2]
    runners = []
    if config.status_listen is not None:
        app = web.Application()
        app.router.add_get("/", relay.status_page)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, config.status_listen.host, config.status_listen.port).start()
        runners.append(runner)
    log.info("relay: agents on %s (TLS), public on %s, %s, status on %s", config.control_listen,
             config.public_listen, f"http on {config.http_listen}" if config.http_listen else "no http",
             config.status_listen or "(off)")
    await stopped.wait()
    log.info("relay: stopping")
    for server in servers:
        server.close()
    for runner in runners:
        await runner.cleanup()
