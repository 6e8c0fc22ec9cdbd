"""The DAV daemon's iMIP sender: takes queued messages to the SMTP server, with retry and backoff.

One background task per daemon (started only when `[dav] smtp_host` is set).
It wakes when a PUT queued something, and otherwise when the next retry is
due. A failed attempt is logged once and tried again after `smtp_retry`
seconds, doubling up to an hour; after three days the message is dropped.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator

import aiosmtplib
from aiohttp import web

from services.core.config import Config, ConfigError
from services.core.db import Database
from services.core.http import CONFIG, DATABASE, first_instance

from .addresses import Settings, mail_of

log = logging.getLogger("dav.imip")

WAKE = web.AppKey("dav_imip_wake", asyncio.Event)
BATCH = 20
MAX_DELAY = 3600.0
GIVE_UP_AFTER = 3 * 86400.0
IDLE_CHECK = 60.0  # look at the queue at least this often (messages queued by another process)


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    starttls: bool
    username: str
    password: str
    envelope_from: str
    retry: float

    @classmethod
    def from_config(cls, config: Config) -> "SmtpServer":
        dav = config.dav
        password = ""
        if dav.smtp_password_file:
            path = config.resolve(dav.smtp_password_file)
            try:
                password = path.read_text().strip()
            except OSError as error:
                raise ConfigError(f"[dav] smtp_password_file: cannot read {path}: {error.strerror}") from None
        return cls(dav.smtp_host, dav.smtp_port, dav.smtp_starttls, dav.smtp_username, password,
                   Settings.from_config(dav).mail_from, max(dav.smtp_retry, 0.1))


async def imip_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the sender while the daemon runs (after the database is open)."""
    config = app[CONFIG]
    if not config.dav.smtp_host or not first_instance(app):  # one sender: two would mail everything twice
        yield
        return
    wake = app[WAKE] = asyncio.Event()
    task = asyncio.create_task(run(app[DATABASE], SmtpServer.from_config(config), wake))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def wake_sender(app: web.Application) -> None:
    """Tell the sender that a PUT queued mail (a no-op without iMIP)."""
    event = app.get(WAKE)
    if event is not None:
        event.set()


async def run(database: Database, server: SmtpServer, wake: asyncio.Event) -> None:
    while True:
        wake.clear()
        due = await database.read(lambda db: list(db.query(
            "SELECT id, recipient, method, message, attempts, next_attempt_at, created_at FROM dav_outgoing_mail "
            "WHERE next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?", [time.time(), BATCH])))
        for row in due:
            await send_one(database, server, row)
        if len(due) == BATCH:
            continue
        next_due = await database.read(
            lambda db: db.execute("SELECT min(next_attempt_at) FROM dav_outgoing_mail").fetchone()[0])
        timeout = IDLE_CHECK if next_due is None else min(IDLE_CHECK, max(0.0, next_due - time.time()))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout)


async def send_one(database: Database, server: SmtpServer, row: dict) -> None:
    """One attempt at one message: sent and removed, or rescheduled (or dropped when too old)."""
    what = f"iMIP {row['method']} to {mail_of(row['recipient'])}"
    try:
        await aiosmtplib.send(row["message"], sender=server.envelope_from, recipients=[mail_of(row["recipient"])],
                              hostname=server.host, port=server.port, start_tls=server.starttls,
                              username=server.username or None, password=server.password or None, timeout=30)
    except (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError) as error:
        attempts, reason = row["attempts"] + 1, str(error)[:500]
        if time.time() - _epoch(row["created_at"]) > GIVE_UP_AFTER:
            log.error("%s dropped after %d attempts: %s", what, attempts, reason)
            await database.write(lambda db: db.execute("DELETE FROM dav_outgoing_mail WHERE id = ?", [row["id"]]))
            return
        delay = min(server.retry * 2 ** (attempts - 1), MAX_DELAY)
        log.warning("%s failed (attempt %d, next in %.0fs): %s", what, attempts, delay, reason)
        await database.write(lambda db: db.execute(
            "UPDATE dav_outgoing_mail SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE id = ?",
            [attempts, time.time() + delay, reason, row["id"]]))
        return
    await database.write(lambda db: db.execute("DELETE FROM dav_outgoing_mail WHERE id = ?", [row["id"]]))
    log.info("%s sent", what)


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
