"""Household members invited by their real email addresses: `hearth user email`, the principal's address
sets, and implicit scheduling that delivers to any member's address internally, never by iMIP mail.

The daemon has SMTP configured (an aiosmtpd sink on loopback), so an invitation that were treated as
external would really be mailed: "no mail" is checked against both the sink and the outgoing queue,
which the PUT fills in its own transaction."""
from __future__ import annotations

import sqlite3
import xml.etree.ElementTree as ET

import icalendar
import pytest
from aiosmtpd.controller import Controller

from tests.dav_harness import MailSink, dav_daemon, propfind, wait_for
from tests.installation import free_port
from tests.test_dav_scheduling import copy_of, event_of, only_item, partstats

C, CS = "{urn:ietf:params:xml:ns:caldav}", "{http://calendarserver.org/ns/}"
ALICE_CAL = "/dav/calendars/alice/calendar/"


@pytest.fixture(scope="module")
def sink():
    return MailSink()


@pytest.fixture(scope="module")
def home(tmp_path_factory, sink):
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    extra = f'smtp_host = "127.0.0.1"\nsmtp_port = {port}\nsmtp_starttls = false\nsmtp_retry = 0.3\n'
    try:
        yield from dav_daemon(tmp_path_factory, extra=extra)
    finally:
        controller.stop()


def hearth(dav, *args: str) -> tuple[int, str, str]:
    result = dav.hearth(*args)
    return result.returncode, result.stdout, result.stderr


def mail_to(dav, sink: MailSink) -> list[str]:
    """Every recipient iMIP mail went to or waits to go to (the sender removes a row only once it is sent)."""
    with sqlite3.connect(dav.home / "var" / "db" / "hearth.sqlite3") as db:
        queued = [row[0] for row in db.execute("SELECT recipient FROM dav_outgoing_mail")]
    return [m["To"] for m in sink.messages] + queued


def invitation(uid: str, organizer: str, *attendees: str, summary: str = "Dinner") -> bytes:
    lines = [f"ATTENDEE;CN=x;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:{a}" for a in attendees]
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth tests//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:20250410T180000Z\r\nDTEND:20250410T200000Z\r\n"
            f"SUMMARY:{summary}\r\nORGANIZER;CN=alice:{organizer}\r\n"
            f"ATTENDEE;CN=alice;PARTSTAT=ACCEPTED:{organizer}\r\n" + "".join(line + "\r\n" for line in lines)
            + "END:VEVENT\r\nEND:VCALENDAR\r\n").encode()


def address_sets(dav, user: str) -> tuple[list[str], list[str]]:
    status, _, body = propfind(dav, f"/dav/principals/{user}/",
                               "<C:calendar-user-address-set/><CS:email-address-set/>", user="alice")
    assert status == 207
    root = ET.fromstring(body)
    return ([h.text for h in root.iter(f"{C}calendar-user-address-set") for h in h],
            [e.text for e in root.iter(f"{CS}email-address")])


def test_addresses_belong_to_one_user_and_compare_without_case(home):
    assert hearth(home, "user", "email", "bob", "add", "bob@example.org") == (0, "added bob@example.org to bob\n", "")
    code, _, error = hearth(home, "user", "email", "alice", "add", "MAILTO:Bob%40Example.ORG")
    assert code == 1
    assert error == "hearth: bob@example.org is already an address of bob; an address belongs to one user only\n"
    # Creating a user with a taken address fails before the password is asked for, and creates nothing.
    code, _, error = hearth(home, "user", "add", "dave", "--email", "BOB@example.org", "--password-stdin")
    assert code == 1 and "already an address of bob" in error
    assert "dave" not in hearth(home, "user", "list")[1]
    # Adding one's own address again is no change; the default address is nobody else's to take.
    assert hearth(home, "user", "email", "bob", "add", "Bob@Example.org")[0] == 0
    code, _, error = hearth(home, "user", "email", "alice", "add", "bob@localhost")
    assert code == 2 and "mail domain localhost" in error
    code, _, error = hearth(home, "user", "email", "bob", "remove", "bob@localhost")
    assert code == 2 and "cannot be removed" in error
    code, _, error = hearth(home, "user", "email", "bob", "add", "not an address")
    assert code == 2 and error.startswith("hearth: 'not an address' is not an email address")
    assert hearth(home, "user", "email", "bob", "list")[1] == "bob@example.org\nbob@localhost\n"

    assert address_sets(home, "bob") == (
        ["mailto:bob@example.org", "mailto:bob@localhost", "/dav/principals/bob/"],
        ["bob@example.org", "bob@localhost"])
    assert address_sets(home, "carol") == (["mailto:carol@localhost", "/dav/principals/carol/"], ["carol@localhost"])

    # A deleted user's addresses are free again.
    result = home.hearth("user", "add", "dave", "--email", "dave@example.org", "--password-stdin", input="dave pass\n")
    assert result.returncode == 0 and result.stdout == "created user dave with dave@example.org\n"
    assert hearth(home, "user", "email", "carol", "add", "dave@example.org")[0] == 1
    assert hearth(home, "user", "del", "dave", "--yes")[0] == 0
    assert hearth(home, "user", "email", "carol", "add", "dave@example.org")[0] == 0
    assert hearth(home, "user", "email", "carol", "remove", "dave@example.org")[0] == 0


def test_member_invited_by_a_real_address_gets_it_in_their_calendar_and_no_mail_is_sent(home, sink):
    """The household scenario as Apple Calendar runs it: alice organizes with the first address her principal
    lists, bob is picked from her contacts under his real address; bob accepts, alice reschedules, then cancels."""
    hearth(home, "user", "email", "bob", "add", "bob@example.org")
    organizer = address_sets(home, "alice")[0][0]
    raw = invitation("dinner-1", organizer, "mailto:BOB@Example.ORG")
    assert home.request("PUT", ALICE_CAL + "dinner-1.ics", raw, user="alice",
                        headers={"If-None-Match": "*", "Content-Type": "text/calendar"})[0] == 201

    _, message = only_item(home, "bob", "inbox")
    assert icalendar.Calendar.from_ical(message)["METHOD"] == "REQUEST"
    bobs = copy_of(home, "bob", "dinner-1")
    assert str(event_of(bobs)["SUMMARY"]) == "Dinner"
    organizer_copy = home.request("GET", ALICE_CAL + "dinner-1.ics", user="alice")[2]
    statuses = {str(a): a.params.get("SCHEDULE-STATUS") for a in event_of(organizer_copy)["ATTENDEE"]}
    assert statuses == {organizer: None, "mailto:BOB@Example.ORG": "1.2"}

    # bob accepts in his calendar, as his client writes it (If-Schedule-Tag-Match): alice's copy and inbox see it.
    href = _href_of(home, "bob", "dinner-1")
    tag = home.request("GET", href, user="bob")[1]["schedule-tag"]
    accepted = bobs.replace(b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=ACCEPTED")
    assert home.request("PUT", href, accepted, user="bob", headers={"If-Schedule-Tag-Match": tag})[0] == 204
    organizer_copy = home.request("GET", ALICE_CAL + "dinner-1.ics", user="alice")[2]
    assert partstats(organizer_copy)["mailto:bob@example.org"] == "ACCEPTED"
    _, reply = only_item(home, "alice", "inbox")
    assert icalendar.Calendar.from_ical(reply)["METHOD"] == "REPLY"

    # alice moves it: bob's copy follows, keeping his answer; then she deletes it: his copy is cancelled.
    moved = organizer_copy.replace(b"DTSTART:20250410T180000Z", b"DTSTART:20250410T190000Z")
    assert home.request("PUT", ALICE_CAL + "dinner-1.ics", moved, user="alice")[0] == 204
    rescheduled = event_of(copy_of(home, "bob", "dinner-1"))
    assert rescheduled["DTSTART"].dt.hour == 19
    assert partstats(copy_of(home, "bob", "dinner-1"))["mailto:bob@example.org"] == "ACCEPTED"
    assert home.request("DELETE", ALICE_CAL + "dinner-1.ics", user="alice")[0] == 204
    assert str(event_of(copy_of(home, "bob", "dinner-1"))["STATUS"]) == "CANCELLED"
    assert icalendar.Calendar.from_ical(only_item(home, "bob", "inbox")[1])["METHOD"] == "CANCEL"
    assert mail_to(home, sink) == []


def test_organizer_uses_any_of_their_addresses(home, sink):
    """An iPhone organizes with the first address of calendar-user-address-set: a registered one."""
    assert hearth(home, "user", "email", "alice", "add", "alice@example.com")[0] == 0
    assert address_sets(home, "alice")[0][0] == "mailto:alice@example.com"
    raw = invitation("walk-1", "mailto:Alice@Example.com", "mailto:carol@localhost", "mailto:alice@localhost")
    assert home.request("PUT", ALICE_CAL + "walk-1.ics", raw, user="alice")[0] == 201
    assert str(event_of(copy_of(home, "carol", "walk-1"))["SUMMARY"]) == "Dinner"
    organizer_copy = home.request("GET", ALICE_CAL + "walk-1.ics", user="alice")[2]
    statuses = {str(a).lower(): a.params.get("SCHEDULE-STATUS") for a in event_of(organizer_copy)["ATTENDEE"]}
    # alice listed under her other address is the organizer herself: nothing is sent to her, no status.
    assert statuses == {"mailto:alice@example.com": None, "mailto:carol@localhost": "1.2",
                        "mailto:alice@localhost": None}

    # carol accepts: the REPLY goes to the organizer address alice registered, so to alice.
    carols = copy_of(home, "carol", "walk-1")
    accepted = carols.replace(b"PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:carol", b"PARTSTAT=ACCEPTED:mailto:carol")
    assert home.request("PUT", _href_of(home, "carol", "walk-1"), accepted, user="carol")[0] == 204
    organizer_copy = home.request("GET", ALICE_CAL + "walk-1.ics", user="alice")[2]
    assert partstats(organizer_copy)["mailto:carol@localhost"] == "ACCEPTED"
    assert mail_to(home, sink) == []


def test_a_removed_address_is_external_again(home, sink):
    hearth(home, "user", "email", "bob", "add", "bob@example.org")
    assert hearth(home, "user", "email", "bob", "remove", "mailto:BOB@example.org") == \
        (0, "removed bob@example.org from bob\n", "")
    before = len(_hrefs(home, "bob", "inbox"))
    raw = invitation("lunch-1", "mailto:alice@localhost", "mailto:bob@example.org", summary="Lunch")
    assert home.request("PUT", ALICE_CAL + "lunch-1.ics", raw, user="alice")[0] == 201
    assert len(_hrefs(home, "bob", "inbox")) == before
    wait_for(lambda: "bob@example.org" in [m["To"] for m in sink.messages])
    assert hearth(home, "user", "email", "bob", "add", "bob@example.org")[0] == 0


def _hrefs(dav, user: str, collection: str) -> list[str]:
    _, _, body = propfind(dav, f"/dav/calendars/{user}/{collection}/", "<D:getetag/>", depth="1", user=user)
    return [r.findtext("{DAV:}href") for r in ET.fromstring(body).findall("{DAV:}response")][1:]


def _href_of(dav, user: str, uid: str) -> str:
    for href in _hrefs(dav, user, "calendar"):
        if str(event_of(dav.request("GET", href, user=user)[2])["UID"]) == uid:
            return href
    raise AssertionError(f"{user} has no {uid}")
