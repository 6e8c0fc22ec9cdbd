"""Calendar user addresses (RFC 6638 §2.4.1): who an ORGANIZER or ATTENDEE value is.

A local user's addresses are their email addresses as `mailto:` URIs (the ones
registered with `hearth user email`, then `<user>@<[dav] mail_domain>`) and
their principal URL. Email addresses compare as services/core/addresses.py
says: without regard to case, after mailto: normalisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import sqlite_utils

from services.core.addresses import addresses_of, email_of, mail_domain_of, owner_of

from ..http.paths import PRINCIPAL_COLLECTION, principal_path


@dataclass(frozen=True)
class Settings:
    """What scheduling needs from the config: the local mail domain and whether iMIP is on."""

    mail_domain: str = "localhost"
    imip: bool = False  # [dav] smtp_host is set: external attendees get email
    mail_from: str = ""  # From of iMIP mail

    @classmethod
    def from_config(cls, dav_section) -> "Settings":
        domain = mail_domain_of(dav_section.mail_domain)
        return cls(domain, bool(dav_section.smtp_host), dav_section.smtp_from or f"hearth@{domain}")


def user_addresses(db: sqlite_utils.Database, user: str, settings: Settings) -> list[str]:
    """The user's calendar user addresses, as calendar-user-address-set lists them: mailto ones first
    (Apple's clients organize with the first), registered before the default, then the principal URL."""
    return [f"mailto:{address}" for address in addresses_of(db, user, settings.mail_domain)] + \
        [principal_path(user)]


def normalize(address: str) -> str:
    """The comparable form of an address: trimmed, lower case, `mailto:` spelled one way."""
    address = str(address).strip()
    if address[:7].lower() == "mailto:":
        email = email_of(address)
        return "mailto:" + (email if email is not None else unquote(address[7:]).strip().lower())
    return address.lower()


def local_user(db: sqlite_utils.Database, address: str, settings: Settings) -> str | None:
    """The local user this address names (a registered address, mailto at our domain, or their principal
    URL), else None. A registered address wins over a name at the mail domain."""
    address = normalize(address)
    if address.startswith("mailto:"):
        owner = owner_of(db, address)
        if owner is not None:
            return owner
    name = _candidate(address, settings)
    if name is None:
        return None
    return name if db.execute("SELECT 1 FROM users WHERE name = ?", [name]).fetchone() else None


def is_ours(address: str, settings: Settings) -> bool:
    """Whether the address belongs to this server's domain (or a principal URL), user or not."""
    return _candidate(normalize(address), settings) is not None


def is_mail(address: str) -> bool:
    return normalize(address).startswith("mailto:") and "@" in address


def mail_of(address: str) -> str:
    """The bare email address of a mailto: URI."""
    return normalize(address)[7:]


def _candidate(address: str, settings: Settings) -> str | None:
    if address.startswith("mailto:"):
        local, at, domain = address[7:].rpartition("@")
        return local if at and local and domain == settings.mail_domain else None
    path = urlsplit(address).path if "://" in address else address
    if path.startswith(PRINCIPAL_COLLECTION):
        rest = path[len(PRINCIPAL_COLLECTION):].rstrip("/")
        return unquote(rest) if rest and "/" not in rest else None
    return None
