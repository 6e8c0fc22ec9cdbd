"""The relay's side of one agent: its idle pool connections and its open streams.

The transport is a warm pool: the agent keeps `pool_size` authenticated TLS
connections open to the relay, each waiting to carry exactly one public
connection, and dials a new one as soon as one is taken. We chose this over a
multiplexed session because each stream then has its own TCP connection, its
own kernel buffers and its own flow control: a slow download fills only its
own window and can never hold up another stream (no head-of-line blocking and
no flow-control layer of our own to get wrong). The cost is one TLS handshake
per public connection: the agent dials the replacement while the taken
connection is already carrying, and resumes its TLS session to make it cheap,
but it still takes CPU from the relay and the agent that the stream could use.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from .relay_config import AgentSpec
from .splice import Counter
from .wire import PING, PING_SECONDS

log = logging.getLogger("relay")


@dataclass(eq=False)
class PoolConnection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str
    taken: bool = False
    watcher: asyncio.Task | None = None

    @property
    def alive(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()


@dataclass(eq=False)
class AgentPool:
    spec: AgentSpec
    served: set[str] = field(default_factory=set)     # hostnames the agent claimed
    idle: list[PoolConnection] = field(default_factory=list)
    open_streams: int = 0
    streams_total: int = 0
    bytes: Counter = field(default_factory=Counter)
    last_seen: float | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def add(self, connection: PoolConnection, hostnames: set[str]) -> None:
        self.served = hostnames
        self.last_seen = time.time()
        connection.watcher = asyncio.create_task(self._watch(connection))
        self.idle.append(connection)
        async with self.changed:
            self.changed.notify()

    async def take(self, timeout: float) -> PoolConnection | None:
        """An idle live connection, waiting up to `timeout` for the agent to dial one; None if none came."""
        deadline = asyncio.get_running_loop().time() + timeout
        async with self.changed:
            while True:
                while self.idle:
                    connection = self.idle.pop()
                    if connection.alive:
                        connection.taken = True
                        if connection.watcher is not None:
                            # Not awaited: splice() takes the connection over at the protocol level and
                            # never reads the StreamReader the cancelled watcher was waiting on.
                            connection.watcher.cancel()
                        return connection
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    return None
                try:
                    await asyncio.wait_for(self.changed.wait(), left)
                except asyncio.TimeoutError:
                    return None

    @property
    def connected(self) -> bool:
        return any(connection.alive for connection in self.idle) or self.open_streams > 0

    async def _watch(self, connection: PoolConnection) -> None:
        """While idle: ping now and then, and drop the connection when the agent closes it."""
        try:
            while not connection.taken:
                try:
                    data = await asyncio.wait_for(connection.reader.read(1), PING_SECONDS)
                except asyncio.TimeoutError:
                    connection.writer.write(PING)
                    await connection.writer.drain()
                    continue
                # An agent says nothing on an idle connection: EOF or junk both end it.
                if data:
                    log.warning("agent %s (%s): sent data on an idle connection; closing it",
                                self.spec.name, connection.peer)
                break
        except (OSError, ConnectionError):
            pass
        except asyncio.CancelledError:
            if connection.taken:
                return
            raise
        if connection in self.idle:
            self.idle.remove(connection)
        connection.writer.close()

    def status(self) -> dict:
        return {"connected": self.connected, "hostnames": sorted(self.served),
                "idle_connections": sum(1 for c in self.idle if c.alive),
                "open_streams": self.open_streams, "streams_total": self.streams_total,
                "bytes_in": self.bytes.inbound, "bytes_out": self.bytes.outbound,
                "max_streams": self.spec.max_streams, "last_seen": self.last_seen}
