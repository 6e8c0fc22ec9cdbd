"""The sync daemon's own OpenAPI document (the API daemon cannot see another daemon's routes)."""
from services.core.openapi import get_openapi
from services.core.routing import Route

from .common import PREFIX

ROUTES = (
    Route("GET", f"{PREFIX}/openapi.json", get_openapi, "This OpenAPI document", tag="meta", access="public"),
)
