"""The WebDAV protocol under each of the tree's mounts (/files/, /remote.php/dav/files/,
/remote.php/webdav/; see namespace): one route per path, the method picks the handler."""
from __future__ import annotations

from aiohttp import web

from services.core.errors import MethodNotAllowed

from .collections import delete_resource, mkcol
from .context import call_of
from .copymove import copy, move
from .download import get
from .locking import lock, unlock
from .namespace import MOUNTS
from .propfind import propfind, proppatch
from .upload import put

HANDLERS = {
    "GET": get, "HEAD": get, "PUT": put, "DELETE": delete_resource, "MKCOL": mkcol, "PROPFIND": propfind,
    "PROPPATCH": proppatch, "COPY": copy, "MOVE": move, "LOCK": lock, "UNLOCK": unlock,
}
ALLOW = ", ".join(["OPTIONS", *HANDLERS])


async def options(request: web.Request) -> web.StreamResponse:
    await call_of(request)
    return web.Response(headers={"DAV": "1, 2", "Allow": ALLOW, "MS-Author-Via": "DAV"})


async def dispatch(request: web.Request) -> web.StreamResponse:
    if request.method == "OPTIONS":
        return await options(request)
    handler = HANDLERS.get(request.method)
    if handler is None:
        raise MethodNotAllowed(f"{request.method} is not a method this server knows", headers={"Allow": ALLOW})
    return await handler(request)


def add_routes(app: web.Application) -> None:
    """The catch-alls of the mounts: register them after every more specific route."""
    for mount in MOUNTS:
        app.router.add_route("*", mount.prefix + "{tail:.*}", dispatch)
        app.router.add_route("*", mount.prefix.rstrip("/"), dispatch)
