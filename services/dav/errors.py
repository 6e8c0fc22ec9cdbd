"""DAV errors: each carries the precondition element a DAV client expects in the error body.

RFC 4918 §16: a failed precondition is answered with 403 (or 409) and a
`DAV:error` body naming the element, e.g. `<C:no-uid-conflict/>`; the protocol
layer renders `namespace` and `element`, storage only chooses them.
"""
from __future__ import annotations

from services.core.errors import HTTPError

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"


class Precondition(HTTPError):
    """A DAV precondition failed; `element` (in `namespace`) names which one."""

    status, code = 403, "precondition"

    def __init__(self, namespace: str, element: str, reason: str, *, status: int = 403,
                 href: str | None = None):
        super().__init__(f"{element}: {reason}")
        self.namespace, self.element, self.status = namespace, element, status
        self.code = element
        self.href = href  # e.g. the existing resource for no-uid-conflict


class PreconditionFailed(HTTPError):
    """If-Match / If-None-Match (or Overwrite: F) did not hold: 412, nothing changed."""

    status, code = 412, "precondition-failed"


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
