"""DAV errors: each carries the precondition element a DAV client expects in the error body.

RFC 4918 §16: a failed precondition is answered with 403 (or 409) and a
`DAV:error` body naming the element, e.g. `<C:no-uid-conflict/>`; the protocol
layer renders `namespace` and `element`, storage only chooses them.
"""
from __future__ import annotations

from services.core.errors import Precondition, PreconditionFailed

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
__all__ = ["DAV", "CALDAV", "CARDDAV", "Precondition", "PreconditionFailed", "namespace_of", "invalid_calendar",
           "invalid_calendar_object", "invalid_address"]


def namespace_of(kind: str) -> str:
    """The precondition namespace for a collection kind ('calendar' | 'addressbook')."""
    return CALDAV if kind == "calendar" else CARDDAV


def invalid_calendar(reason: str) -> Precondition:
    return Precondition(CALDAV, "valid-calendar-data", reason)


def invalid_calendar_object(reason: str) -> Precondition:
    """Valid iCalendar that breaks RFC 4791 §4.1 (one component type, one UID per resource)."""
    return Precondition(CALDAV, "valid-calendar-object-resource", reason)


def invalid_address(reason: str) -> Precondition:
    return Precondition(CARDDAV, "valid-address-data", reason)
