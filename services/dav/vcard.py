"""vCard as CardDAV stores it: validate an address object resource and pull out what queries use.

vobject reads vCard 2.1, 3.0 and 4.0. RFC 6352 §5.1 says every vCard in an
address book collection MUST have a UID that is unique in the collection, and
the store enforces that uniqueness (no-uid-conflict), so a vCard without UID is
refused with valid-address-data: we cannot add one without rewriting the
client's bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

import vobject

from .errors import invalid_address

VERSIONS = ("2.1", "3.0", "4.0")


@dataclass(frozen=True)
class Card:
    uid: str
    version: str
    fn: str
    emails: tuple[str, ...]
    tels: tuple[str, ...]


def parse_vcard(raw: bytes) -> Card:
    """Validate `raw` as one vCard; raise Precondition valid-address-data otherwise."""
    text = _text(raw)
    try:
        found = list(vobject.readComponents(text, allowQP=True))
    except Exception as error:  # vobject raises assorted errors (ParseError, ValueError, …) for bad input
        raise invalid_address(f"not a vCard: {error}") from None
    if len(found) != 1:
        raise invalid_address(f"{len(found)} objects where one vCard was expected")
    card = found[0]
    if card.name == "VCALENDAR":
        raise invalid_address("iCalendar data is not a vCard")
    if card.name != "VCARD":
        raise invalid_address(f"expected a VCARD, found {card.name}")
    version = _first(card, "version")
    if version not in VERSIONS:
        raise invalid_address(f"unsupported vCard VERSION {version or '(missing)'}")
    uid = _first(card, "uid")
    if not uid:
        raise invalid_address("the vCard has no UID (RFC 6352 §5.1)")
    return Card(uid, version, _first(card, "fn"), _all(card, "email"), _all(card, "tel"))


def _first(card, name: str) -> str:
    lines = card.contents.get(name) or []
    return str(lines[0].value).strip() if lines else ""


def _all(card, name: str) -> tuple[str, ...]:
    return tuple(str(line.value).strip() for line in card.contents.get(name, []))


def _text(raw: bytes) -> str:
    """vCard 3.0/4.0 are UTF-8; 2.1 files from old phones are often Latin-1."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
