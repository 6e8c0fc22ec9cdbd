"""The relay's own view for `hearth status`: one line per agent, read from its status page."""
from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from services.core.errors import ConfigError

from .relay_config import load_relay_config

TIMEOUT = 2.0


def describe_relay(path: Path) -> list[str]:
    """Lines for `hearth status`: each agent's connection and streams, and what was refused."""
    try:
        config = load_relay_config(path)
    except ConfigError as error:
        return [f"relay: {error}"]
    if config.status_listen is None:
        return ["relay: no status_listen in relay.toml: nothing to ask"]
    url = f"http://{config.status_listen}/"
    try:
        status = asyncio.run(_fetch(url))
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        return [f"relay: its status page {url} does not answer ({error or type(error).__name__})"]
    lines = []
    for name, agent in sorted(status.get("agents", {}).items()):
        if agent.get("connected"):
            lines.append(f"relay: agent {name} connected for {', '.join(agent.get('hostnames', []))}: "
                         f"{agent.get('open_streams', 0)} open streams (max {agent.get('max_streams')}), "
                         f"{agent.get('idle_connections', 0)} idle connections, "
                         f"{agent.get('streams_total', 0)} streams so far")
        else:
            lines.append(f"relay: agent {name} not connected")
    refused = status.get("refused") or {}
    if refused:
        lines.append("relay: refused " + ", ".join(f"{kind} {count}" for kind, count in sorted(refused.items())))
    return lines


async def _fetch(url: str) -> dict:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT)) as session:
        async with session.get(url) as response:
            response.raise_for_status()
            return await response.json(content_type=None)
