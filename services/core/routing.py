"""One declarative list of routes drives both the router and the OpenAPI document.

Each route module ends with a `ROUTES` tuple of `Route`s next to its handlers;
a daemon's `create_app` registers them (enforcing `access`), and
`services.core.openapi.build_spec` describes the very same list, so a route
cannot exist without being documented. Shared by every daemon (api, sync).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Literal, Mapping

from aiohttp import web
from pydantic import BaseModel

from services.core.auth import require_admin, require_user
from services.core.numbers import INT64_MAX, parse_int, parse_number

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Access = Literal["public", "user", "admin"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    access: Access = "user"
    body: type[BaseModel] | None = None          # JSON request body
    response: type[BaseModel] | None = None      # JSON response (None with 204: no body)
    many: bool = False                           # the response is a list of `response`
    status: int = 200
    errors: tuple[int, ...] = ()                 # beyond those implied by access and body
    path_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    query_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # optional query parameters
    raw_body: str | None = None                  # a non-JSON request body's media type
    raw_response: str | None = None              # a non-JSON response's media type

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


def guarded(route: Route) -> Handler:
    """The route's handler behind the check its `access` declares."""
    check = {"public": None, "user": require_user, "admin": require_admin}[route.access]
    if check is None:
        return route.handler

    @functools.wraps(route.handler)
    async def handler(request: web.Request) -> web.StreamResponse:
        await check(request)
        return await route.handler(request)

    return handler


def respond(payload: BaseModel | list[BaseModel], status: int = 200) -> web.Response:
    """A JSON response from a model (or a list of models)."""
    if isinstance(payload, list):
        data: Any = [item.model_dump(mode="json") for item in payload]
    else:
        data = payload.model_dump(mode="json")
    return web.json_response(data, status=status)


def int_param(request: web.Request, name: str) -> int:
    """A path parameter that must be a whole number that can name a row (BadRequest otherwise:
    2**63 and above can name nothing, and would overflow SQLite)."""
    return parse_int(name, request.match_info[name])


def int_query(request: web.Request, name: str, default: int, *, minimum: int = 0,
              maximum: int = INT64_MAX) -> int:
    """An optional whole-number query parameter: `default` when absent or empty, BadRequest when bad."""
    raw = request.query.get(name)
    return default if raw is None or raw == "" else parse_int(name, raw, minimum, maximum)


def number_query(request: web.Request, name: str, default: float, *, minimum: float, maximum: float) -> float:
    """An optional finite-number query parameter (never nan or inf): `default` when absent or empty."""
    raw = request.query.get(name)
    return default if raw is None or raw == "" else parse_number(name, raw, minimum, maximum)
