"""The OpenAPI 3.1 document, built from the same Route list the router uses (shared by every daemon)."""
from __future__ import annotations

import re
from typing import Any, Iterable

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.core.routing import Route

OPENAPI = web.AppKey("openapi", dict)

REF = "#/components/schemas/{model}"


class Error(BaseModel):
    """Every error response: a stable code and a reason meant for people."""

    error: str
    reason: str


ERROR_RESPONSES: dict[int, tuple[str, str, dict[str, Any]]] = {
    400: ("BadRequest", "The body or a parameter is invalid; the reason names the field.", {}),
    401: ("Unauthorized", "Missing or wrong credentials.", {
        "WWW-Authenticate": {"schema": {"type": "string"}, "description": 'Basic realm="hearth", charset="UTF-8"'},
    }),
    403: ("Forbidden", "Authenticated, but not allowed (admin only).", {}),
    404: ("NotFound", "No such resource.", {}),
    409: ("Conflict", "The request conflicts with the current state; the reason says how.", {}),
    410: ("Gone", "The folder was deleted by its owner (code folder-deleted); the reason says when and how "
                  "to restore it.", {}),
    413: ("PayloadTooLarge", "The request body is larger than the route accepts.", {}),
    429: ("TooManyRequests", "Too many failed logins from this address.", {
        "Retry-After": {"schema": {"type": "integer"}, "description": "seconds until the address may try again"},
    }),
    507: ("InsufficientStorage", "The folder owner's quota would be exceeded.", {}),
}


def _error_statuses(route: Route) -> list[int]:
    statuses = set(route.errors)
    if route.body is not None or route.query_params:
        statuses.add(400)
    if any(schema.get("type") == "integer" for schema in route.path_params.values()):
        statuses.add(400)  # a malformed number
    if route.access != "public":
        statuses.update((401, 429))
    if route.access == "admin":
        statuses.add(403)
    return sorted(statuses)


def _operation(route: Route, refs: dict[tuple[type[BaseModel], str], dict]) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "tags": [route.tag],
    }
    names = re.findall(r"\{(\w+)\}", route.path)
    if names:
        operation["parameters"] = [
            {"name": name, "in": "path", "required": True,
             **({"description": route.path_params[name]["description"]}
                if "description" in route.path_params.get(name, {}) else {}),
             "schema": {k: v for k, v in route.path_params.get(name, {"type": "string"}).items()
                        if k != "description"}}
            for name in names]
    for name, spec in route.query_params.items():
        operation.setdefault("parameters", []).append(
            {"name": name, "in": "query", "required": False,
             **({"description": spec["description"]} if "description" in spec else {}),
             "schema": {k: v for k, v in spec.items() if k != "description"}})
    if route.body is not None:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": refs[(route.body, "validation")]}}}
    elif route.raw_body is not None:
        operation["requestBody"] = {"required": True, "content": {
            route.raw_body: {"schema": {"type": "string", "contentMediaType": route.raw_body}}}}
    if route.status == 204:
        success: dict[str, Any] = {"description": "Done; no content."}
    elif route.raw_response is not None:
        success = {"description": route.summary, "content": {
            route.raw_response: {"schema": {"type": "string", "contentMediaType": route.raw_response}}}}
    else:
        schema: dict[str, Any] = refs[(route.response, "serialization")] if route.response else {"type": "object"}
        if route.many:
            schema = {"type": "array", "items": schema}
        success = {"description": route.summary, "content": {"application/json": {"schema": schema}}}
    operation["responses"] = {str(route.status): success}
    for status in _error_statuses(route):
        operation["responses"][str(status)] = {"$ref": f"#/components/responses/{ERROR_RESPONSES[status][0]}"}
    if route.access == "public":
        operation["security"] = []
    return operation


API_DESCRIPTION = ("Accounts and app passwords of a hearth home server. Authenticate with HTTP Basic "
                   "(account password or app password) or with an app password as a bearer token.")


def build_spec(routes: Iterable[Route], *, title: str = "hearth API",
               description: str = API_DESCRIPTION) -> dict[str, Any]:
    """The OpenAPI 3.1 document for `routes`, with pydantic's schemas as components."""
    routes = list(routes)
    wanted = {(Error, "serialization")}
    for route in routes:
        if route.body is not None:
            wanted.add((route.body, "validation"))
        if route.response is not None:
            wanted.add((route.response, "serialization"))
    refs, definitions = models_json_schema(sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1])),
                                           ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    error_ref = refs[(Error, "serialization")]
    responses = {
        name: {"description": description,
               **({"headers": headers} if headers else {}),
               "content": {"application/json": {"schema": error_ref}}}
        for name, description, headers in ERROR_RESPONSES.values()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1",
            "description": description,
        },
        "security": [{"basic": []}, {"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "responses": responses,
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic",
                          "description": "user name and account password or app password"},
                "bearer": {"type": "http", "scheme": "bearer", "description": "an app password"},
            },
        },
    }


async def get_openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])
