"""`python -m services.tunnel [--config FILE]`: the tunnel agent, run by rc.d/hearth_tunnel until SIGTERM.

With [tunnel] relay empty the agent records "disabled" and idles, so the
suite starts the same way whether or not a tunnel is configured.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from services.core.config import Config, ConfigError, load_config
from services.core.exitcodes import ExitStatus
from services.core.log import setup_logging
from services.core.private import private_umask

from .agent import Agent, AgentSettings
from .agent_state import state_file, write_state
from .event_loop import run as run_loop
from .hostnames import normalise, problem
from .relay_config import read_secret
from .relay_trust import client_context

log = logging.getLogger("tunnel")


def settings_from(config: Config) -> AgentSettings:
    tunnel, where = config.tunnel, config.path or "hearth.toml"
    relay = _host_port(tunnel.relay, f"{where}: [tunnel] relay")
    front = _host_port(config.front.proxy_protocol_listen,
                       f"{where}: [front] proxy_protocol_listen (where the agent hands connections)")
    if not tunnel.hostnames:
        raise ConfigError(f"{where}: [tunnel] hostnames: name at least one hostname the relay routes here")
    hostnames = tuple(normalise(str(h)) for h in tunnel.hostnames)
    for hostname in hostnames:
        if why := problem(hostname):
            raise ConfigError(f"{where}: [tunnel] hostnames: {why}")
    if not tunnel.secret_file:
        raise ConfigError(f"{where}: [tunnel] secret_file: the agent needs its secret")
    if tunnel.pool_size < 1:
        raise ConfigError(f"{where}: [tunnel] pool_size: expected at least 1, got {tunnel.pool_size}")
    secret = read_secret(config.resolve(tunnel.secret_file), f"{where}: [tunnel] secret_file")
    context = client_context(str(config.resolve(tunnel.relay_ca)) if tunnel.relay_ca else None,
                             tunnel.relay_pin or None)
    return AgentSettings(relay=relay, name=tunnel.name, secret=secret.decode(errors="strict"),
                         hostnames=hostnames,
                         pool_size=tunnel.pool_size, backoff_max=max(tunnel.backoff_max, 1.0),
                         context=context, relay_name=tunnel.relay_name or None, pin=tunnel.relay_pin or None,
                         front=front)


def _host_port(value: str, where: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(f"{where}: expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


async def serve(config: Config, settings: AgentSettings | None) -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    # rc.d's reload sends SIGHUP: say what it does not do rather than die of it.
    loop.add_signal_handler(signal.SIGHUP, lambda: log.info(
        "SIGHUP: nothing to reload; [tunnel] changes take `hearth service tunnel restart`"))
    path = state_file(config.data_dir)
    if settings is None:
        log.info("[tunnel] relay is empty: the tunnel is off")
        write_state(path, {"state": "disabled", "since": None, "relay": None})
        await stopped.wait()
        return
    log.info("tunnel agent %r: relay %s:%d, %d pool connections, serving %s", settings.name, *settings.relay,
             settings.pool_size, ", ".join(settings.hostnames))
    running = asyncio.create_task(Agent(settings, path).run())
    await stopped.wait()
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.tunnel",
                                     description="hearth's tunnel agent: dials out to the relay, hands public "
                                                 "connections to the front end.")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./hearth.toml or $HEARTH_CONFIG)")
    args = parser.parse_args(argv)
    private_umask()  # its state file lives in the private data directory
    try:
        config = load_config(args.config)
        setup_logging(config.log_level)
        settings = settings_from(config) if config.tunnel.relay else None
    except (ConfigError, UnicodeDecodeError) as error:
        print(f"hearth-tunnel: {error}", file=sys.stderr)
        return ExitStatus.CONFIG
    run_loop(serve(config, settings))
    log.info("stopped")
    return ExitStatus.OK


if __name__ == "__main__":
    sys.exit(main())
