"""The agent's state file, var/run/tunnel.agent.json: what `hearth status` and `hearth up` read.

Fields: state ("disabled", "connecting", "connected" or "reconnecting"),
since (unix time of the last change of state), relay, last_error,
idle_connections, open_streams, streams_total, pid, updated_at. Replaced
atomically (temp file, rename) so a reader never sees half of it.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

STATE_NAME = "tunnel.agent.json"


def state_file(data_dir: Path) -> Path:
    return data_dir / "run" / STATE_NAME


def write_state(path: Path, fields: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "w", encoding="utf-8") as handle:
        json.dump({**fields, "pid": os.getpid(), "updated_at": time.time()}, handle, indent=1)
        handle.write("\n")
    os.replace(temp, path)


def read_agent_state(data_dir: Path) -> dict | None:
    try:
        with open(state_file(data_dir), encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def describe(state: dict | None) -> str:
    """One line for `hearth status`."""
    if not state:
        return "tunnel: no state yet"
    name = state.get("state", "?")
    if name == "disabled":
        return "tunnel: off ([tunnel] relay is empty)"
    line = f"tunnel: {name} to {state.get('relay')} since {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(state.get('since') or 0))}"
    line += f", {state.get('open_streams', 0)} open streams, {state.get('idle_connections', 0)} idle connections"
    if name != "connected" and state.get("last_error"):
        line += f"; last error: {state['last_error']}"
    return line
