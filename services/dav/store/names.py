"""URL segments as names of collections and items: one segment, nothing that escapes a path."""
from __future__ import annotations

from services.core.errors import BadRequest

MAX_NAME = 255


def check_name(name: str, what: str = "name") -> str:
    """The name unchanged if it is a safe single URL segment; BadRequest otherwise."""
    if (not isinstance(name, str) or not name or len(name) > MAX_NAME or name in (".", "..")
            or "/" in name or "\x00" in name or name != name.strip()):
        raise BadRequest(f"invalid {what}: {name!r}")
    return name
