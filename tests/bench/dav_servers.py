"""The three DAV servers of the benchmark, each its own process on a free loopback port with its own storage.

* hearth: `python -m services.dav` as tests/dav_harness.py starts it, user alice
  with her password (HTTP Basic, argon2 hash, the daemon's login cache).
* Radicale: `python -m radicale` with no config file, htpasswd auth with a
  plain-text password file, owner-only rights, its default fsync on.
* Xandikos: `python -m xandikos serve` with no authentication: its `--htpasswd`
  needs `--autocert` (HTTPS), which the other two do not pay for here.

Every server gets a fresh calendar (MKCALENDAR) and address book (extended
MKCOL) named `bench` under alice's homes, so no one starts with data.

Radicale and Xandikos take time per PUT that grows with the collection (Radicale
reads every item to check the UID is new; Xandikos commits a git tree of every
item), so 10,000 single PUTs would take each of them most of an hour. Past the
PUTs that are measured, each server is loaded its own fastest way: hearth by
PUT, Radicale by one PUT of the whole calendar on the collection (its import),
Xandikos by one git commit of all the files into the collection's repository.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import time
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

import aiohttp
from dulwich import porcelain

from tests.bench import dav_client as dav
from tests.bench.dav_data import Item, one_addressbook, one_calendar
from tests.bench.test_front_throughput import Daemon, free_port
from tests.dav_harness import DavDaemon
from tests.daemons import PASSWORDS

USER = "alice"
START_TIMEOUT = 60.0


@dataclass
class DavServer:
    """A running server: where its collections are, how to log in, and how to stop it."""

    name: str
    version: str
    origin: str
    calendar: str        # path of the bench calendar, with its trailing slash
    addressbook: str     # path of the bench address book
    auth: tuple[str, str] | None
    notes: list[str] = field(default_factory=list)
    stop_process: object = None
    pid: int = 0
    # (client, collection, items, present): store `items`, of which the first `present` are there already.
    load: Callable[[aiohttp.ClientSession, str, list[Item], int], Awaitable[str]] | None = None

    def stop(self) -> int | None:
        return self.stop_process() if self.stop_process else None


def start_hearth(workdir: Path) -> DavServer:
    home = workdir / "hearth"
    home.mkdir()
    daemon = DavDaemon(home)
    daemon.add_user(USER)
    daemon.start()
    return DavServer("hearth", importlib.metadata.version("hearth"), f"http://127.0.0.1:{daemon.port}",
                     f"/dav/calendars/{USER}/bench/", f"/dav/addressbooks/{USER}/bench/",
                     (USER, PASSWORDS[USER]), ["HTTP Basic (argon2 password, login cache), SQLite WAL"],
                     daemon.stop, daemon.process.pid, _load_by_put)


def start_radicale(workdir: Path) -> DavServer:
    home = workdir / "radicale"
    home.mkdir()
    (home / "users").write_text(f"{USER}:{PASSWORDS[USER]}\n")
    port = free_port()
    daemon = Daemon("radicale", [sys.executable, "-m", "radicale", "--config", "",
                                 "--server-hosts", f"127.0.0.1:{port}",
                                 "--storage-filesystem-folder", str(home / "collections"),
                                 "--auth-type", "htpasswd", "--auth-htpasswd-filename", str(home / "users"),
                                 "--auth-htpasswd-encryption", "plain", "--rights-type", "owner_only",
                                 "--logging-level", "warning"], home)
    daemon.wait_answering(port, START_TIMEOUT)
    return DavServer("radicale", importlib.metadata.version("radicale"), f"http://127.0.0.1:{port}",
                     f"/{USER}/bench/", f"/{USER}/bench-contacts/", (USER, PASSWORDS[USER]),
                     ["HTTP Basic against a plain-text htpasswd file, file per item, fsync on (defaults)"],
                     lambda: _stop(daemon), daemon.pid, _load_radicale)


def start_xandikos(workdir: Path) -> DavServer:
    home = workdir / "xandikos"
    home.mkdir()
    port = free_port()
    daemon = Daemon("xandikos", [sys.executable, "-m", "xandikos", "serve", "-d", str(home / "data"),
                                 "--defaults", "--current-user-principal", f"/{USER}/",
                                 "--state-dir", str(home / "state"),
                                 "-l", "127.0.0.1", "-p", str(port)], home)
    daemon.wait_answering(port, START_TIMEOUT)
    return DavServer("xandikos", importlib.metadata.version("xandikos"), f"http://127.0.0.1:{port}",
                     f"/{USER}/calendars/bench/", f"/{USER}/contacts/bench/", None,
                     ["NO authentication (its --htpasswd requires --autocert HTTPS); "
                      "started with --defaults; a git repository per collection"],
                     lambda: _stop(daemon), daemon.pid, _xandikos_loader(home / "data"))


STARTERS = {"hearth": start_hearth, "radicale": start_radicale, "xandikos": start_xandikos}


def skipped_servers() -> dict[str, str]:
    """The servers that cannot run here, with why."""
    return {name: f"python -m {name} is not installed: .venv/bin/pip install -e '.[bench]'"
            for name in ("radicale", "xandikos") if importlib.util.find_spec(name) is None}


def measure_each(workdir: Path, skipped: dict[str, str], measure: Callable[[DavServer], object],
                 began: float) -> list:
    """`measure(server)` for each server in turn, each started alone and stopped after; a hearth daemon
    that exits with an error adds a problem to its result (which has `problems`)."""
    results = []
    for name, start in STARTERS.items():
        if name in skipped:
            continue
        print(f"bench: {name}", flush=True)
        server = start(workdir)
        try:
            results.append(measure(server))
        finally:
            code = server.stop()
        if name == "hearth" and code:
            results[-1].problems.append(f"the daemon exited {code}")
        print(f"bench: {name} done, {time.monotonic() - began:.0f} s in", flush=True)
    return results


def servers_line(results: list, skipped: dict[str, str]) -> str:
    """'hearth 0.1.0, radicale 3.9.0, xandikos SKIPPED (why)' for a report's head."""
    return (", ".join(f"{r.name} {r.version}" for r in results)
            + "".join(f", {name} SKIPPED ({why})" for name, why in skipped.items()))


def judge_answers(results: list) -> None:
    """Print what the other servers got wrong; fail on what hearth got wrong."""
    theirs = [f"{r.name}: {p}" for r in results if r.name != "hearth" for p in r.problems]
    if theirs:
        print("what Radicale and Xandikos got wrong (reported, not failed):\n  " + "\n  ".join(theirs))
    ours = [p for r in results if r.name == "hearth" for p in r.problems]
    assert not ours, "hearth answered wrongly:\n  " + "\n  ".join(ours)


def _stop(daemon: Daemon) -> int | None:
    try:
        daemon.stop()
    except subprocess.SubprocessError:
        pass
    return daemon.process.returncode


async def _load_by_put(client: aiohttp.ClientSession, collection: str, items: list[Item], present: int) -> str:
    items = items[present:]
    seconds, statuses = await dav.put_all(client, collection, items)
    assert set(statuses) <= {201, 204}, f"PUT statuses {dict(statuses)}"
    return f"PUT, {len(items) / seconds:,.0f} items/s"


async def _load_radicale(client: aiohttp.ClientSession, collection: str, items: list[Item], present: int) -> str:
    """One PUT of the whole collection: Radicale replaces its content, one file per UID named `<UID>.ics`."""
    calendar = items[0].name.endswith(".ics")
    body = one_calendar(items) if calendar else one_addressbook(items)
    content_type = "text/calendar" if calendar else "text/vcard"
    await dav.call(client, "PUT", collection, body, {"Content-Type": content_type}, expect=(201,))
    return "one PUT of the whole collection (Radicale's import)"


def _xandikos_loader(data: Path):
    async def load(client: aiohttp.ClientSession, collection: str, items: list[Item], present: int) -> str:
        """The files written into the collection's git work tree, added and committed at once."""
        repository = data / collection.strip("/")
        items = items[present:]
        for item in items:
            (repository / item.name).write_bytes(item.body)
        porcelain.add(str(repository), paths=[str(repository / item.name) for item in items])
        porcelain.commit(str(repository), message=b"bench import", author=b"bench <bench@localhost>",
                         committer=b"bench <bench@localhost>")
        return "one git commit of all the files (Xandikos's storage)"
    return load
