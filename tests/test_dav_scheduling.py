"""RFC 6638 scheduling over HTTP with real clients: invitations between local users (the caldav
library as organizer and attendee), inbox and outbox, free-busy through the outbox, and iMIP email
to external attendees through a local SMTP sink (aiosmtpd), including an SMTP server that is down."""
from __future__ import annotations

import sqlite3
import time
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import icalendar
import pytest
from aiosmtpd.controller import Controller

from tests.dav_harness import EVENT, MailSink, dav_daemon, event_of, partstats, propfind, wait_for
from tests.installation import free_port

C = "{urn:ietf:params:xml:ns:caldav}"
ALICE_CAL = "/dav/calendars/alice/calendar/"


def invitation(uid: str, *attendees: str, summary: str = "Planning", extra: str = "", start: str = "20250310T100000Z",
               organizer: str = "mailto:alice@localhost") -> bytes:
    lines = [f"ATTENDEE;CN={a.split(':')[1].split('@')[0]};PARTSTAT=NEEDS-ACTION;RSVP=TRUE:{a}" for a in attendees]
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth tests//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:{start}\r\nDTEND:20250310T110000Z\r\n"
            f"SUMMARY:{summary}\r\nORGANIZER;CN=alice:{organizer}\r\n" + "".join(line + "\r\n" for line in lines)
            + extra + "END:VEVENT\r\nEND:VCALENDAR\r\n").encode()


def only_item(dav, user: str, collection: str) -> tuple[str, bytes]:
    """(href, body) of the single item in one of the user's calendar collections."""
    status, _, body = propfind(dav, f"/dav/calendars/{user}/{collection}/", "<D:getetag/>", depth="1", user=user)
    assert status == 207
    hrefs = [r.findtext("{DAV:}href") for r in ET.fromstring(body).findall("{DAV:}response")][1:]
    assert len(hrefs) == 1, hrefs
    return hrefs[0], dav.request("GET", hrefs[0], user=user)[2]


def items(dav, user: str, collection: str) -> list[bytes]:
    status, _, body = propfind(dav, f"/dav/calendars/{user}/{collection}/", "<D:getetag/>", depth="1", user=user)
    hrefs = [r.findtext("{DAV:}href") for r in ET.fromstring(body).findall("{DAV:}response")][1:]
    return [dav.request("GET", h, user=user)[2] for h in hrefs]


def copy_of(dav, user: str, uid: str) -> bytes:
    found = [raw for raw in items(dav, user, "calendar") if str(event_of(raw)["UID"]) == uid]
    assert len(found) == 1, (user, uid, len(found))
    return found[0]


def test_principal_inbox_and_outbox_are_discoverable(dav):
    assert "calendar-auto-schedule" in dav.request("OPTIONS", "/dav/")[1]["dav"]
    status, _, body = propfind(dav, "/dav/principals/bob/", "<C:calendar-user-address-set/><C:schedule-inbox-URL/>"
                               "<C:schedule-outbox-URL/><C:calendar-user-type/>", user="bob")
    root = ET.fromstring(body)
    assert [h.text for h in root.iter("{DAV:}href")][1:] == [
        "mailto:bob@localhost", "/dav/principals/bob/", "/dav/calendars/bob/inbox/", "/dav/calendars/bob/outbox/"]
    assert root.findtext(f".//{C}calendar-user-type") == "INDIVIDUAL"

    status, _, body = propfind(dav, "/dav/calendars/bob/", "<D:resourcetype/>", depth="1", user="bob")
    types = {r.findtext("{DAV:}href"): {t.tag for t in r.find(".//{DAV:}resourcetype")}
             for r in ET.fromstring(body).findall("{DAV:}response")}
    assert types["/dav/calendars/bob/inbox/"] == {"{DAV:}collection", f"{C}schedule-inbox"}
    assert types["/dav/calendars/bob/outbox/"] == {"{DAV:}collection", f"{C}schedule-outbox"}
    assert f"{C}calendar" in types["/dav/calendars/bob/calendar/"]

    status, _, body = propfind(dav, "/dav/calendars/bob/inbox/", "<C:schedule-default-calendar-URL/>", user="bob")
    assert ET.fromstring(body).findtext(f".//{C}schedule-default-calendar-URL/{{DAV:}}href") == \
        "/dav/calendars/bob/calendar/"
    # The caldav library lists calendars only, not the inbox and outbox.
    assert {c.url.path for c in dav.client("bob").principal().calendars()} >= {"/dav/calendars/bob/calendar/"}
    assert not {c.url.path for c in dav.client("bob").principal().calendars()} & {
        "/dav/calendars/bob/inbox/", "/dav/calendars/bob/outbox/"}
    # Reserved: neither made by MKCALENDAR nor deleted.
    assert dav.request("MKCALENDAR", "/dav/calendars/bob/inbox/", user="bob")[0] in (403, 405, 409)
    assert dav.request("DELETE", "/dav/calendars/bob/outbox/", user="bob")[0] == 403
    assert dav.request("PUT", "/dav/calendars/bob/inbox/x.ics", EVENT % b"inbox-put", user="bob")[0] == 403


def test_alice_invites_bob_and_carol_bob_accepts_alice_cancels(dav):
    alice = dav.client("alice")
    calendar = alice.principal().calendar(cal_url=ALICE_CAL)
    ical = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth tests//EN\r\nBEGIN:VEVENT\r\nUID:party-1\r\n"
            "DTSTAMP:20250101T000000Z\r\nDTSTART:20250601T180000Z\r\nDTEND:20250601T220000Z\r\nSUMMARY:Party\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")
    calendar.save_with_invites(ical, ["mailto:bob@localhost", "mailto:carol@localhost"])

    for user in ("bob", "carol"):
        _, message = only_item(dav, user, "inbox")
        parsed = icalendar.Calendar.from_ical(message)
        assert parsed["METHOD"] == "REQUEST" and str(event_of(message)["UID"]) == "party-1"
        assert str(event_of(copy_of(dav, user, "party-1"))["SUMMARY"]) == "Party"
    organizer_copy = dav.request("GET", ALICE_CAL + "party-1.ics", user="alice")[2]
    statuses = {str(a).lower(): a.params.get("SCHEDULE-STATUS") for a in event_of(organizer_copy)["ATTENDEE"]}
    assert statuses == {"mailto:bob@localhost": "1.2", "mailto:carol@localhost": "1.2"}

    # bob accepts with the caldav library, from the invitation in his inbox.
    bob = dav.client("bob")
    invites = list(bob.principal().schedule_inbox().get_items())
    assert len(invites) == 1 and invites[0].is_invite_request()
    invites[0].accept_invite()
    assert partstats(copy_of(dav, "bob", "party-1"))["mailto:bob@localhost"] == "ACCEPTED"
    organizer_copy = dav.request("GET", ALICE_CAL + "party-1.ics", user="alice")[2]
    assert partstats(organizer_copy) == {"mailto:bob@localhost": "ACCEPTED", "mailto:carol@localhost": "NEEDS-ACTION"}
    _, reply = only_item(dav, "alice", "inbox")
    assert icalendar.Calendar.from_ical(reply)["METHOD"] == "REPLY"

    # alice deletes the event: both copies are cancelled, not deleted.
    assert dav.request("DELETE", ALICE_CAL + "party-1.ics", user="alice")[0] == 204
    for user in ("bob", "carol"):
        assert str(event_of(copy_of(dav, user, "party-1"))["STATUS"]) == "CANCELLED"
        assert icalendar.Calendar.from_ical(only_item(dav, user, "inbox")[1])["METHOD"] == "CANCEL"


def test_status_cancelled_removed_attendee_and_plain_events(dav):
    raw = invitation("meet-2", "mailto:bob@localhost", "mailto:carol@localhost")
    status, headers, _ = dav.request("PUT", ALICE_CAL + "meet-2.ics", raw, user="alice")
    assert status == 201 and "etag" not in headers  # SCHEDULE-STATUS was written: the client must refetch
    assert partstats(copy_of(dav, "carol", "meet-2"))["mailto:carol@localhost"] == "NEEDS-ACTION"

    # carol is taken off the list: she gets a CANCEL; bob's copy is updated with the new summary.
    changed = invitation("meet-2", "mailto:bob@localhost", summary="Planning (moved)")
    assert dav.request("PUT", ALICE_CAL + "meet-2.ics", changed, user="alice")[0] == 204
    assert str(event_of(copy_of(dav, "carol", "meet-2"))["STATUS"]) == "CANCELLED"
    assert str(event_of(copy_of(dav, "bob", "meet-2"))["SUMMARY"]) == "Planning (moved)"

    # STATUS:CANCELLED by the organizer cancels bob's copy too.
    cancelled = invitation("meet-2", "mailto:bob@localhost", summary="Planning (moved)", extra="STATUS:CANCELLED\r\n")
    assert dav.request("PUT", ALICE_CAL + "meet-2.ics", cancelled, user="alice")[0] == 204
    assert str(event_of(copy_of(dav, "bob", "meet-2"))["STATUS"]) == "CANCELLED"

    # An unknown local address gets 3.7; a plain event is stored byte for byte with its ETag.
    status, _, _ = dav.request("PUT", ALICE_CAL + "meet-3.ics", invitation("meet-3", "mailto:nobody@localhost"),
                               user="alice")
    stored = dav.request("GET", ALICE_CAL + "meet-3.ics", user="alice")[2]
    assert event_of(stored)["ATTENDEE"].params["SCHEDULE-STATUS"] == "3.7"
    status, headers, _ = dav.request("PUT", ALICE_CAL + "plain.ics", EVENT % b"plain-1", user="alice")
    assert status == 201 and headers["etag"]
    assert dav.request("GET", ALICE_CAL + "plain.ics", user="alice")[2] == EVENT % b"plain-1"


def test_recurring_invitation_with_an_instance_only_carol_attends(dav):
    carol_only = ("BEGIN:VEVENT\r\nUID:weekly-9\r\nDTSTAMP:20250101T000000Z\r\nRECURRENCE-ID:20250317T100000Z\r\n"
                  "DTSTART:20250317T140000Z\r\nDTEND:20250317T150000Z\r\nSUMMARY:Planning (carol)\r\n"
                  "ORGANIZER:mailto:alice@localhost\r\nATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:carol@localhost\r\n"
                  "END:VEVENT\r\n")
    raw = invitation("weekly-9", "mailto:bob@localhost", extra="RRULE:FREQ=WEEKLY;COUNT=3\r\n").replace(
        b"END:VCALENDAR", carol_only.encode() + b"END:VCALENDAR")
    assert dav.request("PUT", ALICE_CAL + "weekly-9.ics", raw, user="alice")[0] == 201
    bob = icalendar.Calendar.from_ical(copy_of(dav, "bob", "weekly-9")).walk("VEVENT")
    assert len(bob) == 1 and "RRULE" in bob[0] and "EXDATE" in bob[0]  # the series, without carol's instance
    carol = icalendar.Calendar.from_ical(copy_of(dav, "carol", "weekly-9")).walk("VEVENT")
    assert [str(c["SUMMARY"]) for c in carol] == ["Planning (carol)"] and "RECURRENCE-ID" in carol[0]

    # carol accepts her instance; alice's override shows it. Inbox messages can be deleted.
    answer = copy_of(dav, "carol", "weekly-9").replace(b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=ACCEPTED")
    carol_href = next(h for h in _hrefs(dav, "carol", "calendar")
                      if str(event_of(dav.request("GET", h, user="carol")[2])["UID"]) == "weekly-9")
    assert dav.request("PUT", carol_href, answer, user="carol")[0] == 204
    override = [c for c in icalendar.Calendar.from_ical(dav.request("GET", ALICE_CAL + "weekly-9.ics",
                                                                    user="alice")[2]).walk("VEVENT")
                if "RECURRENCE-ID" in c][0]
    assert override["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    for href in _hrefs(dav, "carol", "inbox"):
        assert dav.request("DELETE", href, user="carol")[0] == 204
    assert _hrefs(dav, "carol", "inbox") == []


def test_attendee_declines_by_deleting_unless_schedule_reply_false(dav):
    raw = invitation("meet-4", "mailto:bob@localhost", "mailto:carol@localhost")
    assert dav.request("PUT", ALICE_CAL + "meet-4.ics", raw, user="alice")[0] == 201
    bob_copy = next(h for h in _hrefs(dav, "bob", "calendar")
                    if str(event_of(dav.request("GET", h, user="bob")[2])["UID"]) == "meet-4")
    assert dav.request("DELETE", bob_copy, user="bob")[0] == 204
    assert partstats(dav.request("GET", ALICE_CAL + "meet-4.ics", user="alice")[2])["mailto:bob@localhost"] == \
        "DECLINED"
    carol_copy = next(h for h in _hrefs(dav, "carol", "calendar")
                      if str(event_of(dav.request("GET", h, user="carol")[2])["UID"]) == "meet-4")
    assert dav.request("DELETE", carol_copy, user="carol", headers={"Schedule-Reply": "F"})[0] == 204
    assert partstats(dav.request("GET", ALICE_CAL + "meet-4.ics", user="alice")[2])["mailto:carol@localhost"] == \
        "NEEDS-ACTION"


def test_schedule_tag_lets_replies_and_organizer_changes_pass_each_other(dav):
    raw = invitation("tag-1", "mailto:bob@localhost", "mailto:carol@localhost")
    status, headers, _ = dav.request("PUT", ALICE_CAL + "tag-1.ics", raw, user="alice")
    organizer_tag = headers["schedule-tag"]
    bob_href = next(h for h in _hrefs(dav, "bob", "calendar")
                    if str(event_of(dav.request("GET", h, user="bob")[2])["UID"]) == "tag-1")
    _, headers, first = dav.request("GET", bob_href, user="bob")
    stale_tag = headers["schedule-tag"]

    # The organizer moves the event: bob's copy gets a new Schedule-Tag, and his stale answer is refused.
    assert dav.request("PUT", ALICE_CAL + "tag-1.ics", invitation(
        "tag-1", "mailto:bob@localhost", "mailto:carol@localhost", summary="Moved"), user="alice")[0] == 204
    _, headers, current = dav.request("GET", bob_href, user="bob")
    assert headers["schedule-tag"] != stale_tag
    answer = first.replace(b"PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:bob", b"PARTSTAT=ACCEPTED;RSVP=TRUE:mailto:bob")
    assert answer != first
    assert dav.request("PUT", bob_href, answer, user="bob", headers={"If-Schedule-Tag-Match": stale_tag})[0] == 412
    answer = current.replace(b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=ACCEPTED", 1)
    assert partstats(answer)["mailto:bob@localhost"] == "ACCEPTED"
    status, headers, _ = dav.request("PUT", bob_href, answer, user="bob",
                                     headers={"If-Schedule-Tag-Match": headers["schedule-tag"]})
    assert status == 204

    # bob's reply changed alice's ETag but not her Schedule-Tag; her client's PUT with that tag and a
    # stale NEEDS-ACTION for bob goes through and keeps his answer.
    _, headers, organizer_copy = dav.request("GET", ALICE_CAL + "tag-1.ics", user="alice")
    assert partstats(organizer_copy)["mailto:bob@localhost"] == "ACCEPTED"
    assert headers["schedule-tag"] != organizer_tag  # alice's own move changed it
    edited = invitation("tag-1", "mailto:bob@localhost", "mailto:carol@localhost", summary="Moved",
                        extra="LOCATION:Kitchen\r\n")
    assert dav.request("PUT", ALICE_CAL + "tag-1.ics", edited, user="alice",
                       headers={"If-Schedule-Tag-Match": headers["schedule-tag"]})[0] == 204
    assert partstats(dav.request("GET", ALICE_CAL + "tag-1.ics", user="alice")[2])["mailto:bob@localhost"] == \
        "ACCEPTED"
    assert partstats(copy_of(dav, "bob", "tag-1"))["mailto:bob@localhost"] == "ACCEPTED"
    assert str(event_of(copy_of(dav, "bob", "tag-1"))["LOCATION"]) == "Kitchen"


def test_free_busy_through_the_outbox(dav):
    event = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth tests//EN\r\nBEGIN:VEVENT\r\nUID:busy-1\r\n"
             b"DTSTAMP:20250101T000000Z\r\nDTSTART:20250701T090000Z\r\nDTEND:20250701T100000Z\r\n"
             b"SUMMARY:Private\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    assert dav.request("PUT", "/dav/calendars/bob/calendar/busy-1.ics", event, user="bob")[0] == 201
    answers = dav.client("alice").principal().freebusy_request(
        datetime(2025, 7, 1, tzinfo=timezone.utc), datetime(2025, 7, 2, tzinfo=timezone.utc),
        ["mailto:bob@localhost", "mailto:stranger@example.org"])
    assert "mailto:bob@localhost" in answers  # caldav files recipients it could not ask about under "errors"
    assert "stranger@example.org" in str(answers.get("errors"))
    status, _, body = dav.request("POST", "/dav/calendars/alice/outbox/", (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nMETHOD:REQUEST\r\nBEGIN:VFREEBUSY\r\nUID:fb-1\r\n"
        "DTSTAMP:20250101T000000Z\r\nDTSTART:20250701T000000Z\r\nDTEND:20250702T000000Z\r\n"
        "ORGANIZER:mailto:alice@localhost\r\nATTENDEE:mailto:bob@localhost\r\nATTENDEE:mailto:x@example.org\r\n"
        "END:VFREEBUSY\r\nEND:VCALENDAR\r\n"), user="alice", headers={"Content-Type": "text/calendar"})
    assert status == 200
    responses = ET.fromstring(body).findall(f"{C}response")
    by_recipient = {r.findtext(f"{C}recipient/{{DAV:}}href"): r for r in responses}
    assert by_recipient["mailto:x@example.org"].findtext(f"{C}request-status").startswith("3.7")
    bob = by_recipient["mailto:bob@localhost"]
    assert bob.findtext(f"{C}request-status").startswith("2.0")
    freebusy = icalendar.Calendar.from_ical(bob.findtext(f"{C}calendar-data")).walk("VFREEBUSY")[0]
    periods = freebusy["FREEBUSY"] if isinstance(freebusy["FREEBUSY"], list) else [freebusy["FREEBUSY"]]
    assert [(p.dt[0], p.dt[1]) for p in periods] == [(datetime(2025, 7, 1, 9, tzinfo=timezone.utc),
                                                     datetime(2025, 7, 1, 10, tzinfo=timezone.utc))]
    # Only your own outbox, and only as your own organizer address.
    assert dav.request("POST", "/dav/calendars/bob/outbox/", b"x", user="alice")[0] == 403


def _hrefs(dav, user: str, collection: str) -> list[str]:
    _, _, body = propfind(dav, f"/dav/calendars/{user}/{collection}/", "<D:getetag/>", depth="1", user=user)
    return [r.findtext("{DAV:}href") for r in ET.fromstring(body).findall("{DAV:}response")][1:]


# --- iMIP: external attendees by email ---------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp_port():
    return free_port()


@pytest.fixture(scope="module")
def mail_dav(tmp_path_factory, smtp_port):
    extra = (f'mail_domain = "home.test"\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\n'
             'smtp_starttls = false\nsmtp_retry = 0.3\n')
    yield from dav_daemon(tmp_path_factory, extra=extra)


def test_imip_one_message_per_external_attendee_per_significant_change(mail_dav, smtp_port):
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        cal = "/dav/calendars/alice/calendar/"
        attendees = ("mailto:ext1@example.org", "mailto:ext2@example.net", "mailto:bob@home.test")
        raw = invitation("imip-1", *attendees, organizer="mailto:alice@home.test")
        assert mail_dav.request("PUT", cal + "imip-1.ics", raw, user="alice")[0] == 201
        wait_for(lambda: len(sink.messages) == 2)
        assert sorted(m["To"] for m in sink.messages) == ["ext1@example.org", "ext2@example.net"]
        part = next(p for p in sink.messages[0].walk() if p.get_content_type() == "text/calendar")
        assert part.get_param("method") == "REQUEST"
        assert icalendar.Calendar.from_ical(part.get_payload(decode=True))["METHOD"] == "REQUEST"
        assert str(event_of(copy_of(mail_dav, "bob", "imip-1"))["SUMMARY"]) == "Planning"  # local: no email

        stored = mail_dav.request("GET", cal + "imip-1.ics", user="alice")[2]
        statuses = {str(a).lower(): a.params.get("SCHEDULE-STATUS") for a in event_of(stored)["ATTENDEE"]}
        assert statuses == {"mailto:ext1@example.org": "1.1", "mailto:ext2@example.net": "1.1",
                            "mailto:bob@home.test": "1.2"}
        # Insignificant: the same object again, then only DTSTAMP and SEQUENCE changed.
        assert mail_dav.request("PUT", cal + "imip-1.ics", stored, user="alice")[0] == 204
        touched = stored.replace(b"DTSTAMP:20250101T000000Z", b"DTSTAMP:20250102T000000Z")
        touched = touched.replace(b"END:VEVENT", b"SEQUENCE:1\r\nEND:VEVENT")
        assert mail_dav.request("PUT", cal + "imip-1.ics", touched, user="alice")[0] == 204
        # Significant: a new time; one message each, again.
        moved = touched.replace(b"DTSTART:20250310T100000Z", b"DTSTART:20250310T093000Z")
        assert mail_dav.request("PUT", cal + "imip-1.ics", moved, user="alice")[0] == 204
        wait_for(lambda: len(sink.messages) == 4)
        time.sleep(1.0)
        assert len(sink.messages) == 4
        assert sorted(m["To"] for m in sink.messages[2:]) == ["ext1@example.org", "ext2@example.net"]
    finally:
        controller.stop()


def outgoing_mail(dav) -> int:
    """Messages the daemon has queued and not yet handed to the SMTP server."""
    with sqlite3.connect(dav.home / "var" / "db" / "hearth.sqlite3") as db:
        return db.execute("SELECT COUNT(*) FROM dav_outgoing_mail").fetchone()[0]


def test_imip_sends_nothing_for_a_members_reply_or_an_alarm_and_one_cancel_per_external_attendee(
        mail_dav, smtp_port):
    """Mail is queued by the request that causes it; once the queue is empty the sink holds all of it."""
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()

    def mails_after_the_queue_drains() -> list[tuple[str, str]]:
        wait_for(lambda: outgoing_mail(mail_dav) == 0)
        return [(m["To"], next(p.get_param("method") for p in m.walk() if p.get_content_type() == "text/calendar"))
                for m in sink.messages]

    try:
        cal = "/dav/calendars/alice/calendar/"
        raw = invitation("imip-3", "mailto:ext3@example.org", "mailto:bob@home.test",
                         organizer="mailto:alice@home.test")
        assert mail_dav.request("PUT", cal + "imip-3.ics", raw, user="alice")[0] == 201
        assert mails_after_the_queue_drains() == [("ext3@example.org", "REQUEST")]

        # bob, a member, accepts: alice's copy changes, the external attendee hears nothing.
        bob_href = next(h for h in _hrefs(mail_dav, "bob", "calendar")
                        if b"imip-3" in mail_dav.request("GET", h, user="bob")[2])
        bob_copy = mail_dav.request("GET", bob_href, user="bob")[2]
        accepted = bob_copy.replace(b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=ACCEPTED")
        assert mail_dav.request("PUT", bob_href, accepted, user="bob")[0] == 204
        assert partstats(mail_dav.request("GET", cal + "imip-3.ics", user="alice")[2])[
            "mailto:bob@home.test"] == "ACCEPTED"
        # alice adds a reminder to her own copy: not a change for anyone else.
        stored = mail_dav.request("GET", cal + "imip-3.ics", user="alice")[2]
        alarm = b"BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Soon\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
        assert mail_dav.request("PUT", cal + "imip-3.ics", stored.replace(b"END:VEVENT", alarm + b"END:VEVENT"),
                                user="alice")[0] == 204
        assert mails_after_the_queue_drains() == [("ext3@example.org", "REQUEST")]

        # alice deletes it: exactly one CANCEL to the external attendee.
        assert mail_dav.request("DELETE", cal + "imip-3.ics", user="alice")[0] == 204
        assert mails_after_the_queue_drains() == [("ext3@example.org", "REQUEST"), ("ext3@example.org", "CANCEL")]
    finally:
        controller.stop()


def test_local_attendee_replies_to_an_external_organizer_by_email(mail_dav, smtp_port):
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        cal = "/dav/calendars/bob/calendar/"
        raw = invitation("outside-1", "mailto:bob@home.test", organizer="mailto:boss@example.org")
        assert mail_dav.request("PUT", cal + "outside-1.ics", raw, user="bob")[0] == 201
        accepted = raw.replace(b"PARTSTAT=NEEDS-ACTION", b"PARTSTAT=ACCEPTED")
        assert mail_dav.request("PUT", cal + "outside-1.ics", accepted, user="bob")[0] == 204
        wait_for(lambda: len(sink.messages) == 1)
        time.sleep(0.5)
        assert len(sink.messages) == 1 and sink.messages[0]["To"] == "boss@example.org"
        part = next(p for p in sink.messages[0].walk() if p.get_content_type() == "text/calendar")
        reply = icalendar.Calendar.from_ical(part.get_payload(decode=True))
        assert reply["METHOD"] == "REPLY"
        assert event_of(reply.to_ical())["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    finally:
        controller.stop()


def test_imip_is_queued_while_the_smtp_server_is_down(mail_dav, smtp_port):
    cal = "/dav/calendars/alice/calendar/"
    started = time.monotonic()
    raw = invitation("imip-2", "mailto:late@example.org", organizer="mailto:alice@home.test")
    assert mail_dav.request("PUT", cal + "imip-2.ics", raw, user="alice")[0] == 201
    assert time.monotonic() - started < 2.0  # the PUT does not wait for SMTP
    time.sleep(1.0)  # a few failed attempts
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        wait_for(lambda: len(sink.messages) == 1, timeout=30)
        assert sink.messages[0]["To"] == "late@example.org"
        time.sleep(1.0)
        assert len(sink.messages) == 1
    finally:
        controller.stop()
    assert "iMIP REQUEST to late@example.org failed" in mail_dav.log()
    assert "iMIP REQUEST to late@example.org sent" in mail_dav.log()


def test_no_scheduling_step_failed_quietly(dav, mail_dav):
    for daemon in (dav, mail_dav):
        assert "done without scheduling" not in daemon.log()
        assert "not delivered" not in daemon.log()
