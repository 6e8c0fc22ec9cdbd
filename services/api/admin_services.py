"""/api/v1/admin/services: what `hearth status` shows, plus each service's last log lines (admins only).

It reads the same files as `hearth status` (the rc.d scripts, var/run/*.pid and
*.state) through the supervisor's own `describe`, so the page and the command
can never disagree.
"""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from aiohttp import web
from pydantic import BaseModel, Field

from services.core.config import Config
from services.core.http import CONFIG
from services.core.routing import Route, respond
from services.rc.layout import short_name
from services.rc.supervisor import describe, ordered_scripts

LOG_LINES = 20
LOG_TAIL_BYTES = 64 * 1024   # a tail never reads more than this, however big the log
LOG_LINE_CHARS = 500         # one runaway line must not fill the page


class ServiceStatus(BaseModel):
    name: str
    state: str = Field(description="running, starting, backoff, stopping, stopped, gave-up, exited or dead")
    up: bool
    pid: int | None
    uptime: str | None
    restarts: int | None
    reason: str | None = Field(description="why it is not up, when it is not")
    log: str = Field(description="the log file")
    log_tail: list[str] = Field(description=f"its last {LOG_LINES} lines at most")


def tail(path: Path, lines: int = LOG_LINES) -> list[str]:
    """The last `lines` lines of a text file, reading at most LOG_TAIL_BYTES from its end."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            data = handle.read(LOG_TAIL_BYTES)
    except OSError:
        return []
    found = data.decode("utf-8", "replace").splitlines()
    if size > LOG_TAIL_BYTES and found:
        found = found[1:]  # the first line was cut by the seek
    return [line[:LOG_LINE_CHARS] for line in found[-lines:]]


def service_statuses(config: Config) -> list[ServiceStatus]:
    statuses = []
    for script in ordered_scripts(config):
        row, up, reason = describe(config, short_name(script.name))
        statuses.append(ServiceStatus(
            name=row["NAME"], state=row["STATE"], up=up, reason=reason, log=row["LOG"],
            pid=int(row["PID"]) if row["PID"].isdigit() else None,
            uptime=None if row["UPTIME"] == "-" else row["UPTIME"],
            restarts=int(row["RESTARTS"]) if row["RESTARTS"].isdigit() else None,
            log_tail=tail(Path(row["LOG"]))))
    return statuses


async def list_services(request: web.Request) -> web.Response:
    return respond(await asyncio.to_thread(service_statuses, request.app[CONFIG]))


ROUTES = (
    Route("GET", "/api/v1/admin/services", list_services,
          "Every supervised service's state (as `hearth status` shows it) and its last log lines",
          tag="admin", access="admin", response=ServiceStatus, many=True),
)
