"""LOCK and UNLOCK (RFC 4918 §9.10, §9.11): exclusive and shared write locks, refresh, lock-null.

LOCK on a URL where nothing exists creates an empty file there (a
"locked-empty resource", §7.3), which a client then fills with PUT.
"""
from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import sqlite_utils
from aiohttp import web

from services.core.errors import BadRequest, Conflict, Forbidden, Precondition
from services.core.multistatus import element, xml_response
from services.core.tree import commit_file

from . import locks
from .context import DEVICE, call_of, check_if, check_locks, lock_href, resource_at, writable
from .errors import DAV
from .liveprops import activelock
from .namespace import Location, placed
from .resources import lookup
from .xmlio import dav, read_xml


def _lockinfo(root: ET.Element) -> tuple[str, str]:
    """(scope, serialised DAV:owner or '') from a DAV:lockinfo body."""
    if root.tag != dav("lockinfo"):
        raise BadRequest("LOCK body must be a DAV:lockinfo element")
    scope_node = root.find(dav("lockscope"))
    type_node = root.find(dav("locktype"))
    if scope_node is None or len(scope_node) != 1 or type_node is None or type_node.find(dav("write")) is None:
        raise BadRequest("DAV:lockinfo needs a lockscope and a write locktype")
    scope = scope_node[0].tag.removeprefix("{DAV:}")
    if scope not in ("exclusive", "shared"):
        raise BadRequest(f"unknown lock scope {scope_node[0].tag}")
    owner = root.find(dav("owner"))
    return scope, ET.tostring(owner, encoding="unicode") if owner is not None else ""


def _answer(lock: locks.Lock, location: Location, status: int) -> web.Response:
    root_href = location.at(lock.path).href(lock.path == "")
    body = element(dav("prop"), children=[element(dav("lockdiscovery"), children=[activelock(lock, root_href)])])
    return xml_response(body, status=status, headers={"Lock-Token": f"<{lock.token}>"})


async def lock(request: web.Request) -> web.StreamResponse:
    call = await call_of(request)
    root = await read_xml(request)
    timeout = locks.parse_timeout(request.headers.get("Timeout"))
    depth = request.headers.get("Depth", "infinity").strip().lower()
    if depth not in ("0", "infinity"):
        raise BadRequest("LOCK Depth must be 0 or infinity")

    def run(db: sqlite_utils.Database) -> tuple[locks.Lock, Location, int]:
        location = placed(db, call.locate(db))  # locking a new name at the top makes a root-level file
        folder = writable(db, call, location)
        resource = resource_at(db, location)
        check_if(db, call, location, resource)
        if root is None:  # a refresh: the If header names the lock
            held = [lk for token in call.submitted if (lk := locks.by_token(db, token))
                    and lk.folder_id == folder and lk.covers(location.path)]
            if not held:
                raise Precondition(DAV, "lock-token-matches-request-uri", "no lock of this resource was submitted",
                                   status=412)
            if held[0].principal != call.user:
                raise Forbidden("the lock belongs to another user")
            return locks.refresh(db, held[0], timeout), location, 200
        scope, owner = _lockinfo(root)
        status = 200
        if resource is None:
            parent = location.parent_path
            if parent and ((above := lookup(db, folder, parent)) is None or not above.is_collection):
                raise Conflict(f"no collection {parent} to create {location.path} in")
            check_locks(db, call, location)
            commit_file(db, folder, location.path, None, [], 0, time.time_ns(), False, DEVICE)
            status = 201
        lock_depth = depth if (resource is not None and resource.is_collection) else "0"
        made = locks.create(db, call.user, folder, location.path, scope, lock_depth, owner, timeout,
                            lock_href(location))
        return made, location, status

    made, location, status = await call.database.write(run)
    return _answer(made, location, status)


async def unlock(request: web.Request) -> web.StreamResponse:
    call = await call_of(request)
    token = request.headers.get("Lock-Token", "").strip()
    if not (token.startswith("<") and token.endswith(">")):
        raise BadRequest("UNLOCK needs a Lock-Token header: <token>")
    token = token[1:-1]

    def run(db: sqlite_utils.Database) -> None:
        location = call.locate(db)
        held = locks.by_token(db, token)
        if held is None or location.folder is None or held.folder_id != location.folder.id \
                or not held.covers(location.path):
            raise Precondition(DAV, "lock-token-matches-request-uri", "no such lock on this resource", status=409)
        if held.principal != call.user:
            raise Forbidden("the lock belongs to another user")
        locks.remove(db, token)

    await call.database.write(run)
    return web.Response(status=204)
