"""Who may touch what: HTTP Basic login, default collections on first login, owner-only access.

Sharing comes later; for now a user reaches only their own principal, homes
and collections, and anything else is 403 with DAV:need-privileges.
"""
from __future__ import annotations

from aiohttp import web

from services.core.auth import Identity, require_user
from services.core.http import DATABASE

from ..errors import DAV, Precondition
from ..store import ensure_defaults
from .paths import ROOT, Target

# Users whose default collections this process has already made sure of.
ENSURED = web.AppKey("dav_defaults_ensured", set)


class NeedPrivileges(Precondition):
    """403 DAV:need-privileges (RFC 3744 §7.1.1), naming the resource and the privilege missing."""

    def __init__(self, path: str, privilege: str):
        super().__init__(DAV, "need-privileges", f"no {privilege} privilege on {path}", href=path)
        self.privilege = privilege


async def login(request: web.Request) -> Identity:
    """The authenticated user (401 otherwise); their default calendar and address book exist afterwards."""
    identity = await require_user(request)
    ensured = request.app[ENSURED]
    if identity.user not in ensured:
        await request.app[DATABASE].write(lambda db: ensure_defaults(db, identity.user))
        ensured.add(identity.user)
    return identity


def check_owner(user: str, target: Target, privilege: str) -> None:
    """NeedPrivileges unless `target` belongs to the user (the root belongs to everyone)."""
    if target.level != ROOT and target.user != user:
        raise NeedPrivileges(target.path, privilege)
