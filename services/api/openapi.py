"""The API daemon's OpenAPI document route; the builder lives in services.core.openapi."""
from __future__ import annotations

from services.core.openapi import OPENAPI, Error, build_spec, get_openapi
from services.core.routing import Route

__all__ = ["OPENAPI", "Error", "ROUTES", "build_spec", "get_openapi"]

ROUTES = (
    Route("GET", "/api/openapi.json", get_openapi, "This OpenAPI document", tag="meta", access="public"),
)
