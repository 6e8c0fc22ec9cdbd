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


SHARED_BY = "_shared_by_"  # <name>_shared_by_<owner>: a shared collection in its grantee's home (sharing.py)


def check_collection_name(name: str) -> str:
    """check_name, and nothing that would hide a shared collection in the owner's own home."""
    check_name(name, "collection name")
    if SHARED_BY in name:
        raise BadRequest(f"collection names cannot contain {SHARED_BY!r}: it marks shared collections")
    return name
