"""Users' email addresses: the real addresses a household member is invited by.

Every user has the default address `NAME@<[dav] mail_domain>`, derived from
the name and never stored; any number of further addresses are registered
here, each belonging to one user only. Calendar scheduling (services/dav)
resolves an ORGANIZER or ATTENDEE through them, so an invitation sent to
`mailto:bob@example.org` reaches bob's calendar instead of his mailbox.

An address is compared without regard to case, the local part included:
RFC 5321 lets a mail server tell `Bob@` from `bob@`, but none that people
use does, and contact books and clients change the case freely. Nothing
else is folded (dots, `+tags`): that is one provider's rule, not mail's.
A domain written in Unicode is compared in its ASCII (IDNA) form.
Like accounts.py: no HTTP, transactions are the caller's.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

import sqlite_utils

from .accounts import now_iso
from .errors import BadRequest, Conflict, NotFound

MAX_ADDRESS_LENGTH = 254  # RFC 5321 §4.5.3.1.3: the longest path a mail server takes
MAX_LOCAL_LENGTH = 64
DOMAIN_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
FORBIDDEN_IN_LOCAL = re.compile(r"[\s\x00-\x1f\x7f<>()\[\],;:\\\"@]")


def email_of(text: str) -> str | None:
    """The comparable form of an email address or `mailto:` URI (None if it is not one).

    `MAILTO:Bob%40Example.ORG?subject=x` and ` bob@example.org ` are both `bob@example.org`:
    the scheme in any case is dropped, the query part (RFC 6068 headers) is cut off, the
    rest percent-decoded, trimmed and lower-cased, and a Unicode domain spelled in IDNA."""
    text = str(text).strip()
    if text[:7].lower() == "mailto:":
        text = unquote(text[7:].partition("?")[0]).strip()
    local, at, domain = text.rpartition("@")
    if not at or not local or not domain or len(local) > MAX_LOCAL_LENGTH or FORBIDDEN_IN_LOCAL.search(local):
        return None
    domain = _ascii_domain(domain)
    if domain is None:
        return None
    address = f"{local.lower()}@{domain}"
    return address if len(address) <= MAX_ADDRESS_LENGTH else None


def check_address(text: str) -> str:
    """The comparable form of an address a user registers, or BadRequest saying what is wrong."""
    address = email_of(text)
    if address is None:
        raise BadRequest(f"{str(text).strip()!r} is not an email address: write it as name@example.org "
                         f"(a mailto: address is fine too)")
    return address


def mail_domain_of(configured: str) -> str:
    """`[dav] mail_domain` in the form addresses are compared in (lower case, IDNA)."""
    configured = configured.strip().lower() or "localhost"
    return _ascii_domain(configured) or configured


def default_address(user: str, mail_domain: str) -> str:
    """The address every user has: NAME@MAIL_DOMAIN."""
    return f"{user}@{mail_domain_of(mail_domain)}"


def registered_addresses(db: sqlite_utils.Database, user: str) -> list[str]:
    """The user's registered addresses (not the default one), oldest first."""
    rows = db.execute("""SELECT a.address FROM user_addresses a JOIN users u ON u.id = a.user_id
                         WHERE u.name = ? ORDER BY a.id""", [user]).fetchall()
    return [row[0] for row in rows]


def addresses_of(db: sqlite_utils.Database, user: str, mail_domain: str) -> list[str]:
    """Every address of the user: the registered ones first (a client invites and organizes with the first
    address it is told, and a registered address is one people outside can answer), then the default."""
    registered = registered_addresses(db, user)
    default = default_address(user, mail_domain)
    if default not in registered and owner_of(db, default) in (None, user):
        registered.append(default)
    return registered


def owner_of(db: sqlite_utils.Database, address: str) -> str | None:
    """The user who registered this address (any spelling email_of accepts), else None."""
    key = email_of(address)
    if key is None:
        return None
    row = db.execute("""SELECT u.name FROM user_addresses a JOIN users u ON u.id = a.user_id
                        WHERE a.address = ?""", [key]).fetchone()
    return row[0] if row else None


def registrable(db: sqlite_utils.Database, user: str, text: str, mail_domain: str) -> tuple[str, bool]:
    """(the comparable form, whether registering it for `user` adds anything), writing nothing.

    Conflict if another user has it; BadRequest for an address at the mail domain, where
    NAME@MAIL_DOMAIN is already each user's own and another name there would shadow a future user's."""
    address = check_address(text)
    domain = mail_domain_of(mail_domain)
    if address.endswith(f"@{domain}"):
        if address == default_address(user, mail_domain):
            return address, False
        raise BadRequest(f"{address} is at the mail domain {domain}, where each user's address is NAME@{domain}; "
                         f"register an address at another domain")
    owner = owner_of(db, address)
    if owner is not None and owner != user:
        raise Conflict(f"{address} is already an address of {owner}; an address belongs to one user only")
    return address, owner is None


def add_address(db: sqlite_utils.Database, user: str, text: str, mail_domain: str) -> tuple[str, bool]:
    """Register an address for `user`: (its comparable form, whether it was new); raises what
    `registrable` raises, and NotFound for a user that does not exist."""
    user_id = _user_id(db, user)
    address, new = registrable(db, user, text, mail_domain)
    if new:
        db.execute("INSERT INTO user_addresses (user_id, address, created_at) VALUES (?, ?, ?)",
                   [user_id, address, now_iso()])
    return address, new


def remove_address(db: sqlite_utils.Database, user: str, text: str, mail_domain: str) -> str:
    """Unregister one of the user's addresses; NotFound if it is not theirs, BadRequest for the default."""
    address = check_address(text)
    user_id = _user_id(db, user)
    if address == default_address(user, mail_domain):
        raise BadRequest(f"{address} is {user}'s default address (NAME@[dav] mail_domain); it cannot be removed")
    cursor = db.execute("DELETE FROM user_addresses WHERE user_id = ? AND address = ?", [user_id, address])
    if cursor.rowcount != 1:
        raise NotFound(f"{address} is not an address of {user}")
    return address


def _user_id(db: sqlite_utils.Database, user: str) -> int:
    row = db.execute("SELECT id FROM users WHERE name = ?", [user]).fetchone()
    if row is None:
        raise NotFound(f"no user named {user!r}")
    return row[0]


def _ascii_domain(domain: str) -> str | None:
    """A domain in lower-case ASCII (IDNA for a Unicode one), or None if it cannot be a mail domain."""
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    return domain if all(DOMAIN_LABEL.fullmatch(label) for label in domain.split(".")) else None
