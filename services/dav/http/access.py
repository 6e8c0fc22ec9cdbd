"""Who may do what: HTTP Basic login, default collections on first login, privileges per collection.

A user has every privilege in their own principal, homes and collections.
A collection shared with them gives what the share says: 'read' (read it)
or 'read-write' (also add, change and remove its items). Anything else is
403 with DAV:need-privileges, whether or not it exists, so nobody learns
the names of others' collections. Principals are readable by every user:
scheduling and sharing clients look each other up there.
"""
from __future__ import annotations

from aiohttp import web

from services.core.auth import Identity, require_user
from services.core.http import DATABASE

from ..errors import DAV, Precondition
from ..scheduling.mailboxes import ensure_mailboxes
from ..store import ensure_defaults

# Users whose default collections this process has already made sure of.
ENSURED = web.AppKey("dav_defaults_ensured", set)

READ_ONLY = ("read", "read-current-user-privilege-set")
READ_WRITE = (*READ_ONLY, "write-content", "bind", "unbind")
OWNER = (*READ_WRITE, "write", "write-properties")
PRIVILEGES = {"owner": OWNER, "read-write": READ_WRITE, "read": READ_ONLY}


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
        await request.app[DATABASE].write(lambda db: (ensure_defaults(db, identity.user),
                                                      ensure_mailboxes(db, identity.user)))
        ensured.add(identity.user)
    return identity


def require(access: str | None, privilege: str, path: str) -> None:
    """NeedPrivileges unless `access` ('owner' | 'read-write' | 'read' | None) includes `privilege`."""
    if access is None or privilege not in PRIVILEGES[access]:
        raise NeedPrivileges(path, privilege)
