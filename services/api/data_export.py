"""GET /api/v1/me/export: everything `hearth export` writes, for the caller, as one zip download.

The archive is produced while it is sent: the export runs in a worker thread
on its own database connection (one consistent snapshot, as the command reads;
the daemon's small reader pool stays free for everyone else) and hands the
zip's bytes to the response piece by piece, waiting until each is on its way.
So a slow client slows the export down instead of filling memory, whatever
the size of the user's files.

Once the first bytes are out the status cannot change: an export that fails
half way cuts the connection, and the archive arrives without its central
directory, which every zip reader rejects as incomplete.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import date

from aiohttp import web
from aiohttp.helpers import content_disposition_header

from services.core.auth import require_user
from services.core.blobs import SIDE_BLOB_STORE
from services.core.config import Config
from services.core.db import db_path, open_db
from services.core.errors import HTTPError
from services.core.export.archive import export_zip
from services.core.http import CONFIG
from services.core.routing import Route
from services.core.tree import BlobStore
from services.core.user_content import SANDBOX

log = logging.getLogger("api.export")

PIECE_BYTES = 256 * 1024     # what the export thread hands to the response at a time
PIECE_TIMEOUT_S = 300        # a client that takes no bytes for this long has gone away


class ResponseStream:
    """A write-only binary stream for a worker thread that sends into an aiohttp response on `loop`."""

    def __init__(self, response: web.StreamResponse, loop: asyncio.AbstractEventLoop):
        self.response = response
        self.loop = loop
        self.pending = bytearray()
        self.sent = 0

    def write(self, data: bytes) -> int:
        self.pending += data
        if len(self.pending) >= PIECE_BYTES:
            self._send()
        return len(data)

    def flush(self) -> None:
        """zipfile flushes after each entry; pieces stay whole until PIECE_BYTES or `finish`."""

    def finish(self) -> None:
        if self.pending:
            self._send()

    def _send(self) -> None:
        piece, self.pending = bytes(self.pending), bytearray()
        # Waiting for the write (and its drain) is the back pressure that keeps memory flat.
        asyncio.run_coroutine_threadsafe(self.response.write(piece), self.loop).result(PIECE_TIMEOUT_S)
        self.sent += len(piece)


def write_export(config: Config, store: BlobStore, user: str, stream: ResponseStream) -> dict:
    """The export of `user` as a zip on `stream` (in a worker thread); returns the manifest."""
    db = open_db(db_path(config.data_dir))
    try:
        manifest = export_zip(db, store, user, stream)
    finally:
        db.close()
    stream.finish()
    return manifest


async def export_my_data(request: web.Request) -> web.StreamResponse:
    identity = await require_user(request)
    filename = f"hearth-export-{identity.user}-{date.today().isoformat()}.zip"
    response = web.StreamResponse(headers={
        "Content-Type": "application/zip",
        "Content-Disposition": content_disposition_header("attachment", filename=filename),
        "Cache-Control": "no-store",
        **SANDBOX,  # the user's own bytes, zipped: never shown as this origin's page either
    })
    await response.prepare(request)
    stream = ResponseStream(response, asyncio.get_running_loop())
    try:
        manifest = await asyncio.to_thread(write_export, request.app[CONFIG], request.app[SIDE_BLOB_STORE],
                                                  identity.user, stream)
    except Exception as error:
        # The 200 is already sent; only a cut connection can still say "this archive is not whole".
        if isinstance(error, HTTPError):  # damaged or missing data: its reason says it all
            log.error("export of %s failed after %d bytes; connection cut: %s", identity.user, stream.sent,
                      error.reason)
        else:
            log.exception("export of %s failed after %d bytes; connection cut", identity.user, stream.sent)
        if request.transport is not None:
            request.transport.abort()
        return response
    await response.write_eof()
    counts = manifest["counts"]
    log.info("exported %s as a zip: %d files, %d calendars, %d address books, %d bytes sent",
             identity.user, counts["files"], counts["calendars"], counts["address_books"], stream.sent)
    return response


ROUTES = (
    Route("GET", "/api/v1/me/export", export_my_data,
          "Everything you have (files/, calendars/*.ics, contacts/*.vcf, shares.json, manifest.json, as "
          "`hearth export` writes it) as one zip archive, streamed while it is made", tag="me",
          raw_response="application/zip"),
)
