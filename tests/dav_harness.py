"""The DAV daemon as tests meet it: a real process on a loopback port, raw HTTP, the caldav library.

Shared by every DAV test file: `dav_daemon(tmp, *users)` starts one, `propfind` asks for properties,
EVENT / RECURRING / VCARD are small valid objects (EVENT takes a UID with `EVENT % b"uid"`), `event_of` and
`partstats` read a stored event back."""
from __future__ import annotations

import email
import time

import caldav
import icalendar

from tests.daemons import PASSWORDS, LoopbackDaemon, serving


EVENT = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth tests//EN\r\nBEGIN:VEVENT\r\n"
         b"UID:%s\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250301T100000Z\r\nDTEND:20250301T110000Z\r\n"
         b"SUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
RECURRING = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth tests//EN\r\n"
             b"BEGIN:VEVENT\r\nUID:weekly-1\r\nDTSTAMP:20250101T000000Z\r\n"
             b"DTSTART;TZID=Europe/Paris:20250303T090000\r\nDTEND;TZID=Europe/Paris:20250303T093000\r\n"
             b"RRULE:FREQ=WEEKLY;COUNT=10\r\nSUMMARY:Standup\r\nEND:VEVENT\r\n"
             b"BEGIN:VEVENT\r\nUID:weekly-1\r\nDTSTAMP:20250101T000000Z\r\n"
             b"RECURRENCE-ID;TZID=Europe/Paris:20250310T090000\r\n"
             b"DTSTART;TZID=Europe/Paris:20250310T110000\r\nDTEND;TZID=Europe/Paris:20250310T113000\r\n"
             b"SUMMARY:Standup (moved)\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
VCARD = b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:card-1\r\nFN:Carol\r\nN:;Carol;;;\r\nEND:VCARD\r\n"


class DavDaemon(LoopbackDaemon):
    module, section = "services.dav", "dav"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/dav/"

    def healthy(self) -> bool:
        return self.request("GET", "/healthz")[0] == 200

    def request(self, method: str, path: str, body: bytes | str | None = None, user: str | None = None,
                headers: dict | None = None) -> tuple[int, dict, bytes]:
        return self.exchange(method, path, body, user=user, headers=headers)

    def client(self, user: str) -> caldav.DAVClient:
        return caldav.DAVClient(url=self.url, username=user, password=PASSWORDS[user], require_tls=False)


def dav_daemon(tmp_path_factory, *users: str, extra: str = ""):
    """A running DavDaemon with these users (default alice, bob, carol); checks its log stayed clean."""
    with serving(DavDaemon(tmp_path_factory.mktemp("dav"), extra), *(users or PASSWORDS)) as daemon:
        yield daemon
    assert "unhandled error" not in daemon.log()


def propfind(dav: DavDaemon, path: str, props: str, depth: str = "0", user: str = "alice"):
    body = f'<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" ' \
           f'xmlns:CS="http://calendarserver.org/ns/"><D:prop>{props}</D:prop></D:propfind>'
    return dav.request("PROPFIND", path, body, user=user, headers={"Depth": depth, "Content-Type": "application/xml"})


class MailSink:
    """aiosmtpd handler keeping every message it accepts (an SMTP server that delivers nowhere)."""

    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


def wait_for(condition, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def event_of(raw: bytes) -> icalendar.Component:
    """The first VEVENT of an iCalendar object."""
    return icalendar.Calendar.from_ical(raw).walk("VEVENT")[0]


def partstats(raw: bytes) -> dict[str, str]:
    """Each attendee's PARTSTAT in the first VEVENT, by lower-cased address."""
    attendees = event_of(raw).get("ATTENDEE", [])
    attendees = attendees if isinstance(attendees, list) else [attendees]  # one ATTENDEE is not a list
    return {str(a).lower(): str(a.params.get("PARTSTAT")) for a in attendees}
