"""What every hearth daemon's aiohttp application shares.

`create_base_app` gives a daemon its error middleware (one mapping from
exceptions to responses), `/healthz`, the shared database, and the frozen
config; `serve` runs it on TCP or a Unix socket until SIGTERM.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from pydantic import BaseModel, ValidationError

from .config import Config
from .db import Database, db_path, migrate
from .errors import BadRequest, HTTPError
from .instances import DaemonInstance
from .numbers import loads_json
from .schema import MIGRATION_SETS
from .tree.chunks import BlobStore

log = logging.getLogger("http")

CONFIG = web.AppKey("config", Config)
DATABASE = web.AppKey("database", Database)
SERVICE_NAME = web.AppKey("service_name", str)
# Which process of the daemon this is ([NAME] instances; services.core.instances): named on every answer
# in X-Hearth-Instance, so an operator (and a test) sees how the front end spread the requests.
INSTANCE = web.AppKey("instance", DaemonInstance)
INSTANCE_HEADER = "X-Hearth-Instance"
BLOB_STORE = web.AppKey("blob_store", BlobStore)  # set by services.core.blobs.blob_store_context
# On a response to a request whose credentials a daemon verified; the front end takes it off and
# stops counting that credential's requests against the client address (services/front/limits.py).
AUTHENTICATED_HEADER = "Hearth-Authenticated"


def error_body(status: int, code: str, reason: str) -> web.Response:
    return web.json_response({"error": code, "reason": reason}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """The one place where exceptions become responses."""
    try:
        return await handler(request)
    except HTTPError as error:
        if error.status >= 500:
            log.error("%s %s: %s", request.method, request.path, error.reason)
        else:
            log.info("%s %s -> %d: %s", request.method, request.path, error.status, error.reason)
        response = error_body(error.status, error.code, error.reason)
        response.headers.update(error.headers)
        return response
    except web.HTTPException as error:
        if error.status < 400:
            raise
        response = error_body(error.status, error.reason.lower().replace(" ", "-"), error.text or error.reason)
        for name in ("Allow", "WWW-Authenticate", "Retry-After"):
            if name in error.headers:
                response.headers[name] = error.headers[name]
        return response
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("%s %s: unhandled error", request.method, request.path)
        return error_body(500, "internal-error", "internal error; the server log has details")


async def read_json(request: web.Request, model: type[BaseModel]) -> BaseModel:
    """Parse and validate a JSON body, or raise a 400 that says what is wrong."""
    try:
        data = await request.json(loads=loads_json)  # BadRequest for out-of-range or non-finite numbers
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest("body is not valid JSON") from None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(f"{where}: {first['msg']}") from None


async def healthz(request: web.Request) -> web.Response:
    database = request.app.get(DATABASE)
    if database is not None:
        await database.read(lambda db: db.execute("SELECT 1").fetchone())
    store = request.app.get(BLOB_STORE)
    if store is not None:
        await asyncio.to_thread(store.check)  # StoreUnavailable: 503 with its one-line reason
    return web.json_response({"status": "ok", "service": request.app[SERVICE_NAME],
                              "instance": request.config_dict[INSTANCE].number})


def first_instance(app: web.Application) -> bool:
    """Whether this process is its daemon's instance 1, the one that runs the daemon's schedules."""
    return app[INSTANCE].number == 1


async def _name_instance(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[INSTANCE_HEADER] = request.config_dict[INSTANCE].name


def create_base_app(config: Config, name: str, *, with_database: bool = True,
                    middlewares: tuple = ()) -> web.Application:
    """The application every daemon starts from; the daemon adds its own routes."""
    app = web.Application(middlewares=[error_middleware, *middlewares])
    app[CONFIG] = config
    app[SERVICE_NAME] = name
    app[INSTANCE] = DaemonInstance(name, 1)  # daemon_main names another with --instance
    app.on_response_prepare.append(_name_instance)
    app.router.add_get("/healthz", healthz)
    if with_database:
        app.cleanup_ctx.append(_database_context)
    return app


async def _database_context(app: web.Application) -> AsyncIterator[None]:
    path = db_path(app[CONFIG].data_dir)
    await asyncio.to_thread(migrate, path, MIGRATION_SETS)
    app[DATABASE] = Database(path)
    yield
    await asyncio.to_thread(app[DATABASE].close)


@dataclass(frozen=True)
class ListenAddress:
    """`HOST:PORT`, `[::1]:PORT` or `unix:PATH` from the config."""

    host: str | None = None
    port: int | None = None
    path: Path | None = None

    @classmethod
    def parse(cls, value: str, base: Path) -> "ListenAddress":
        if value.startswith("unix:"):
            return cls(path=(base / value[5:]).resolve())
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"expected HOST:PORT or unix:PATH, got {value!r}")
        return cls(host=host.strip("[]") or "127.0.0.1", port=int(port))

    def url(self, path: str = "/") -> str:
        if self.path:
            return f"http://localhost{path}"
        host = f"[{self.host}]" if ":" in (self.host or "") else self.host
        return f"http://{host}:{self.port}{path}"

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.path else f"{self.host}:{self.port}"


def remove_stale_socket(path: Path) -> None:
    """Unlink a Unix socket left by a killed process; refuse if something still answers."""
    try:
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise OSError(f"{path} exists and is not a socket")
    except FileNotFoundError:
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise OSError(f"{path} is in use by a running process")


async def _handle_sighup(app: web.Application) -> None:
    # rc.d `reload` sends SIGHUP to the daemon; Python's default would kill it.
    def reload() -> None:
        log.info("SIGHUP: nothing to reload in place; configuration changes take `hearth service %s restart`",
                 app[SERVICE_NAME])

    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)


def serve(app: web.Application, address: ListenAddress, ready: Callable[[], None] = lambda: None) -> None:
    """Run until SIGTERM/SIGINT; aiohttp finishes in-flight requests on the way out.

    `ready` runs once the socket is bound and listening, never before, so whoever
    reads "serving on" can connect at once. (aiohttp's run_app calls its `print`
    hook after every site has started; tests/test_daemon_ready.py pins that.)
    """
    app.on_startup.append(_handle_sighup)

    def started(_message: str) -> None:
        ready()

    where = {"path": str(address.path)} if address.path else {"host": address.host, "port": address.port}
    if address.path:
        address.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_socket(address.path)
    web.run_app(app, **where, print=started, access_log_class=RequestLog)


def request_line(request: web.BaseRequest) -> str:
    """The request line as the client sent it: the target keeps its percent-encoding (`%00` stays `%00`)."""
    return f"{request.method} {request.raw_path} HTTP/{request.version.major}.{request.version.minor}"


class RequestLog(AbstractAccessLogger):
    """One line per request: `127.0.0.1 "GET /x HTTP/1.1" 200 12 "-" "curl/8.5.0" 0.001234s`.

    Combined-log-like, without the time (the log line has one). Every field is
    a logging argument, so the formatter escapes it and shortens share tokens
    (core.log): what a client sends cannot forge a line or leak a link.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        headers = request.headers
        self.logger.info('%s "%s" %s %s "%s" "%s" %.6fs', request.remote or "-", request_line(request),
                         response.status, response.body_length, headers.get("Referer", "-"),
                         headers.get("User-Agent", "-"), time)
