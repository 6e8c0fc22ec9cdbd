"""Several processes of one hearth daemon (`[sync] instances = N`): their names and addresses.

The daemons keep no state of their own between requests (files, locks, the
journal and its cursors are in the one database; chunks in the blob store), so
sync, files and dav may run as N identical processes behind the front end.
Instance 1 is the daemon as it always was: `hearth_sync`, sync.pid, sync.log,
the configured `listen`. Instance K (2..N) is supervised as `sync_K`
(hearth_sync_K, sync_K.pid, sync_K.log) and listens next to it: on the
socket sync_K.sock beside a `unix:` listen, or on the listen port + K - 1.
Both the supervisor (which starts them) and the front end (which spreads
requests over them) take the names and addresses from here.

Only instance 1 runs a daemon's schedules (retention, garbage collection, the
iMIP sender): two sweeps at once would only repeat each other's work, and two
senders would mail an invitation twice.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import SCALABLE, Config


@dataclass(frozen=True)
class DaemonInstance:
    """Process `number` (1-based) of `daemon`."""

    daemon: str
    number: int

    @property
    def name(self) -> str:
        """The supervised name: `sync` for the first, `sync_2` for the second."""
        return self.daemon if self.number == 1 else f"{self.daemon}_{self.number}"


def count(config: Config, daemon: str) -> int:
    """How many processes of `daemon` run (1 for a daemon that cannot be scaled)."""
    return config.values[daemon]["instances"] if daemon in SCALABLE else 1


def instances_of(config: Config, daemon: str) -> list[DaemonInstance]:
    return [DaemonInstance(daemon, number) for number in range(1, count(config, daemon) + 1)]


def extra_instances(config: Config) -> list[DaemonInstance]:
    """Every instance beyond the first of each daemon: the ones the supervisor generates scripts for."""
    return [instance for daemon in SCALABLE for instance in instances_of(config, daemon)[1:]]


def find(config: Config, name: str) -> DaemonInstance | None:
    """The instance supervised as `name` (sync, sync_2), if `name` is one of a scalable daemon."""
    daemon, _, number = name.partition("_")
    if daemon not in SCALABLE:
        return None
    if not number:
        return DaemonInstance(daemon, 1)
    if not number.isdigit() or not 2 <= int(number) <= count(config, daemon) or number != str(int(number)):
        return None
    return DaemonInstance(daemon, int(number))


def listen(config: Config, instance: DaemonInstance) -> str:
    """Where `instance` listens: the daemon's `listen` for the first, beside it for the others."""
    first = config.values[instance.daemon]["listen"]
    if instance.number == 1:
        return first
    if first.startswith("unix:"):
        path = first[5:]
        stem, dot, suffix = path.rpartition(".")
        if not dot or "/" in suffix:
            return f"unix:{path}_{instance.number}"
        return f"unix:{stem}_{instance.number}.{suffix}"
    host, _, port = first.rpartition(":")
    return f"{host}:{int(port) + instance.number - 1}" if port.isdigit() else first

