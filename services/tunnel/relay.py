"""`hearth relay --config relay.toml`: the public side of the tunnel.

Three listeners and a status page:
- control (TLS, the relay's certificate): agents dial in, authenticate with
  their secret and join their pool (pool.py);
- public ("443"): read only the ClientHello, route by its SNI to the agent
  that serves the name, pass every byte through untouched: TLS ends at home;
- http ("80", optional): redirect to https by Host, for the names agents serve;
- status (loopback only): JSON with agents, hostnames, streams and bytes.

Every refusal is one log line with the client's address and the reason; the
relay itself keeps serving. HEARTH_RELAY_TAP=FILE appends every byte passed
through to FILE (a debugging aid the tests use to prove nothing is plaintext).
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import signal
import ssl
from typing import Any

from aiohttp import web

from .clienthello import NotAClientHello, read_client_hello
from .pool import AgentPool, PoolConnection
from .relay_config import RelayConfig
from .splice import close_quietly, splice
from .wire import MAX_LINE, WireError, encode, read_message

log = logging.getLogger("relay")

TAP_ENV = "HEARTH_RELAY_TAP"


class Relay:
    def __init__(self, config: RelayConfig):
        self.config = config
        self.pools = {agent.name: AgentPool(agent) for agent in config.agents}
        self.refused: dict[str, int] = {}
        tap_path = os.environ.get(TAP_ENV)
        self.tap_file = open(tap_path, "ab", buffering=0) if tap_path else None
        self.control_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.control_context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            self.control_context.load_cert_chain(config.tls_cert, config.tls_key)
        except (OSError, ssl.SSLError) as error:
            from services.core.errors import ConfigError
            raise ConfigError(f"{config.path}: tls_cert/tls_key: {error}") from None

    # refusals

    def refuse(self, kind: str, peer: str, reason: str) -> None:
        self.refused[kind] = self.refused.get(kind, 0) + 1
        log.warning("%s: refused: %s", peer, reason)

    # the control listener

    async def handle_agent(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        try:
            async with asyncio.timeout(self.config.hello_timeout):
                hello = await read_message(reader)
        except (WireError, TimeoutError, OSError, ConnectionError) as error:
            self.refuse("agent", peer, f"agent hello: {error or 'timed out'}")
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
        await pool.add(PoolConnection(reader, writer, peer), set(hello["hostnames"]))

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
        hostnames = {str(h).rstrip(".").lower() for h in hello["hostnames"]}
        foreign = hostnames - set(pool.spec.hostnames)
        if foreign:
            return None, f"agent {pool.spec.name!r} may not serve {', '.join(sorted(foreign))}"
        return pool, ""

    # the public listener

    async def handle_public(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer)
        try:
            async with asyncio.timeout(self.config.hello_timeout):
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
        pool = self.route(hello.server_name)
        if pool is None:
            self.refuse("sni", peer, f"no agent serves {hello.server_name!r}" if hello.server_name
                        else "ClientHello without a server name (SNI)")
            await close_quietly(writer)
            return
        if pool.open_streams >= pool.spec.max_streams:
            self.refuse("limit", peer, f"agent {pool.spec.name!r} has {pool.open_streams} open streams "
                        f"(max_streams {pool.spec.max_streams})")
            await close_quietly(writer)
            return
        pool.open_streams += 1
        try:
            await self.pass_through(pool, hello.server_name, hello.raw, reader, writer, peer)
        finally:
            pool.open_streams -= 1

    def route(self, server_name: str | None) -> AgentPool | None:
        if not server_name:
            return None
        spec = self.config.agent_for(server_name)
        pool = self.pools.get(spec.name) if spec else None
        return pool if pool is not None and server_name in pool.served else None

    async def pass_through(self, pool: AgentPool, hostname: str, first_bytes: bytes,
                           reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str) -> None:
        connection = await pool.take(self.config.wait_for_pool)
        if connection is None:
            self.refuse("pool", peer, f"agent {pool.spec.name!r} has no free connection "
                        f"(waited {self.config.wait_for_pool:g} s)")
            await close_quietly(writer)
            return
        client = writer.get_extra_info("peername") or ("0.0.0.0", 0)
        server = writer.get_extra_info("sockname") or ("0.0.0.0", 0)
        header = encode({"client": client[0], "port": client[1], "hostname": hostname,
                         "server": server[0], "server_port": server[1]})
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

    # the status page and the http redirect

    def status(self) -> dict:
        return {"agents": {name: pool.status() for name, pool in self.pools.items()},
                "refused": dict(self.refused)}

    async def status_page(self, request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(self.status(), indent=1) + "\n", content_type="application/json")

    async def redirect(self, request: web.Request) -> web.Response:
        try:
            host = (request.url.host or "").rstrip(".").lower()
        except ValueError:
            host = ""
        if not host or self.config.agent_for(host) is None:
            log.info("%s: http: no site named %r here: answered 421", request.remote, host[:64])
            return web.Response(status=421, text="no site by that name here\n")
        return web.Response(status=308, headers={"Location": f"https://{host}{request.raw_path}"})


def _peer(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unknown"


async def run_relay(config: RelayConfig) -> None:
    """Serve until SIGTERM or SIGINT."""
    relay = Relay(config)
    servers = [
        await asyncio.start_server(relay.handle_agent, config.control_listen.host, config.control_listen.port,
                                   ssl=relay.control_context, ssl_handshake_timeout=config.hello_timeout,
                                   limit=MAX_LINE),
        await asyncio.start_server(relay.handle_public, config.public_listen.host, config.public_listen.port),
    ]
    runners = []
    for address, handler in ((config.status_listen, relay.status_page), (config.http_listen, relay.redirect)):
        if address is None:
            continue
        app = web.Application()
        app.router.add_route("GET", "/" if handler is relay.status_page else "/{tail:.*}", handler)
        if handler is relay.redirect:
            app.router.add_route("HEAD", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, address.host, address.port).start()
        runners.append(runner)
    log.info("relay: agents on %s (TLS), public on %s, %s, status on %s", config.control_listen,
             config.public_listen, f"http redirect on {config.http_listen}" if config.http_listen else "no http",
             config.status_listen or "(off)")
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    await stopped.wait()
    log.info("relay: stopping")
    for server in servers:
        server.close()
    for runner in runners:
        await runner.cleanup()
