"""The event loop the relay and the agent run on.

uvloop (libuv's loop, with its transports and TLS layer in C) where it is
installed: the tunnel spends its time moving bytes through transports, and
the benchmark shows 10-15% less CPU per byte carried. Without it the tunnel
runs the same on asyncio's own loop.
"""
from __future__ import annotations

try:
    from uvloop import run
except ImportError:
    from asyncio import run

__all__ = ["run"]
