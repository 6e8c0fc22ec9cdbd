"""Calendar user addresses (RFC 6638 §2.4.1): who an ORGANIZER or ATTENDEE value is.

A local user has two addresses: `mailto:<user>@<[dav] mail_domain>` and their
principal URL. Addresses compare case-insensitively (mailto local parts are
case-sensitive on paper, never in practice, and clients change the case).
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import sqlite_utils

PRINCIPALS = "/dav/principals/"


@dataclass(frozen=True)
class Settings:
    """What scheduling needs from the config: the local mail domain and whether iMIP is on."""

    mail_domain: str = "localhost"
    imip: bool = False  # [dav] smtp_host is set: external attendees get email
    mail_from: str = ""  # From of iMIP mail

    @classmethod
    def from_config(cls, dav_section) -> "Settings":
        domain = dav_section.mail_domain.strip().lower() or "localhost"
        return cls(domain, bool(dav_section.smtp_host), dav_section.smtp_from or f"hearth@{domain}")


def user_address(user: str, settings: Settings) -> str:
    """The mailto address a local user organizes and is invited with."""
    return f"mailto:{user}@{settings.mail_domain}"


def normalize(address: str) -> str:
    """The comparable form of an address: trimmed, lower case, `mailto:` spelled one way."""
    address = str(address).strip()
    if address[:7].lower() == "mailto:":
        return "mailto:" + unquote(address[7:]).strip().lower()
    return address.lower()


def local_user(db: sqlite_utils.Database, address: str, settings: Settings) -> str | None:
    """The local user this address names (mailto at our domain, or their principal URL), else None."""
    name = _candidate(normalize(address), settings)
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
    if path.startswith(PRINCIPALS):
        rest = path[len(PRINCIPALS):].rstrip("/")
        return unquote(rest) if rest and "/" not in rest else None
    return None
