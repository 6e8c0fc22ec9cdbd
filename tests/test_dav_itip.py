"""iTIP as implicit scheduling works it out (services/dav/scheduling/itip.py, addresses.py), and delivery
between local users through the store (deliver.py, implicit.py) on a real migrated database."""
from __future__ import annotations

import email

import icalendar
import pytest

from services.core.db import write
from services.dav.scheduling import addresses, attendee, implicit, imip, itip
from services.dav.scheduling.addresses import Settings
from services.dav.scheduling.mailboxes import INBOX, default_calendar, ensure_mailboxes, mailbox
from services.dav.store import CALENDAR, changes_since, collection_by_name, create_collection, get_item, list_items
from services.dav.store.collections import ensure_defaults

SETTINGS = Settings("localhost", imip=True, mail_from="hearth@localhost")
ORGANIZER = "mailto:alice@localhost"


def event(*attendees: str, uid: str = "ev-1", summary: str = "Planning", start: str = "20250310T100000Z",
          extra: str = "", overrides: str = "", organizer: str = ORGANIZER) -> icalendar.Calendar:
    lines = "".join(f"ATTENDEE;PARTSTAT=NEEDS-ACTION:{a}\r\n" for a in attendees)
    return icalendar.Calendar.from_ical(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nDTSTART:{start}\r\nDTEND:20250310T110000Z\r\n"
        f"SUMMARY:{summary}\r\nORGANIZER:{organizer}\r\n{lines}{extra}END:VEVENT\r\n{overrides}END:VCALENDAR\r\n")


def override(rid: str, *attendees: str, uid: str = "ev-1") -> str:
    lines = "".join(f"ATTENDEE;PARTSTAT=NEEDS-ACTION:{a}\r\n" for a in attendees)
    return (f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20250101T000000Z\r\nRECURRENCE-ID:{rid}\r\nDTSTART:{rid}\r\n"
            f"DTEND:20250317T120000Z\r\nSUMMARY:Planning (later)\r\nORGANIZER:{ORGANIZER}\r\n{lines}END:VEVENT\r\n")


def sent(messages) -> dict[str, tuple[str, bool]]:
    return {m.recipient: (m.method, m.significant) for m in messages}


BOB, CAROL, EXT = "mailto:bob@localhost", "mailto:carol@localhost", "mailto:ext@example.org"


# --- addresses ----------------------------------------------------------------------------------------

def test_addresses_compare_case_insensitively_and_know_principals(db):
    write(db, lambda d: d.execute("INSERT INTO users (name, password_hash, created_at) VALUES ('bob', 'x', 'now')"))
    assert addresses.normalize("MAILTO:Bob@LocalHost ") == BOB
    assert addresses.local_user(db, "mailto:BOB@localhost", SETTINGS) == "bob"
    assert addresses.local_user(db, "http://h:8080/dav/principals/bob/", SETTINGS) == "bob"
    assert addresses.local_user(db, "/dav/principals/bob/", SETTINGS) == "bob"
    assert addresses.local_user(db, "mailto:bob@example.org", SETTINGS) is None
    assert addresses.local_user(db, "mailto:nobody@localhost", SETTINGS) is None
    assert addresses.is_ours("mailto:nobody@localhost", SETTINGS)
    assert not addresses.is_ours(EXT, SETTINGS)


# --- organizer side -----------------------------------------------------------------------------------

def test_new_event_requests_every_attendee_but_the_organizer_and_client_scheduled_ones():
    new = event(BOB, "MAILTO:Carol@localhost", ORGANIZER,
                extra="ATTENDEE;SCHEDULE-AGENT=CLIENT:mailto:dave@example.org\r\n")
    assert sent(itip.organizer_messages(None, new, ORGANIZER)) == {BOB: ("REQUEST", True), CAROL: ("REQUEST", True)}
    message = itip.organizer_messages(None, new, ORGANIZER)[0].calendar
    assert message["METHOD"] == "REQUEST" and str(itip.components(message)[0]["UID"]) == "ev-1"


def test_identical_dtstamp_and_sequence_only_changes_send_nothing():
    old = event(BOB, EXT)
    assert itip.organizer_messages(old, event(BOB, EXT), ORGANIZER) == []
    touched = event(BOB, EXT, extra="SEQUENCE:3\r\n")
    touched.walk("VEVENT")[0]["DTSTAMP"] = icalendar.vDDDTypes(itip.components(old)[0]["DTSTAMP"].dt.replace(year=2026))
    assert itip.organizer_messages(old, touched, ORGANIZER) == []


def test_significant_and_insignificant_changes():
    old = event(BOB, EXT)
    assert sent(itip.organizer_messages(old, event(BOB, EXT, summary="Renamed"), ORGANIZER)) == {
        BOB: ("REQUEST", True), EXT: ("REQUEST", True)}
    assert sent(itip.organizer_messages(old, event(BOB, EXT, start="20250310T093000Z"), ORGANIZER)) == {
        BOB: ("REQUEST", True), EXT: ("REQUEST", True)}
    # Another attendee joins: they are invited; the others' copies change, but not in a way worth an email.
    assert sent(itip.organizer_messages(old, event(BOB, EXT, CAROL), ORGANIZER)) == {
        BOB: ("REQUEST", False), EXT: ("REQUEST", False), CAROL: ("REQUEST", True)}
    # A category is not worth an email either.
    assert sent(itip.organizer_messages(old, event(BOB, EXT, extra="CATEGORIES:work\r\n"), ORGANIZER)) == {
        BOB: ("REQUEST", False), EXT: ("REQUEST", False)}


def test_removed_attendees_deleted_and_cancelled_events_get_cancel():
    old = event(BOB, CAROL)
    messages = itip.organizer_messages(old, event(BOB), ORGANIZER)
    assert sent(messages) == {CAROL: ("CANCEL", True), BOB: ("REQUEST", False)}
    cancel = next(m for m in messages if m.method == "CANCEL").calendar
    assert str(itip.components(cancel)[0]["STATUS"]) == "CANCELLED"
    assert sent(itip.organizer_messages(old, None, ORGANIZER)) == {BOB: ("CANCEL", True), CAROL: ("CANCEL", True)}
    cancelled = event(BOB, CAROL, extra="STATUS:CANCELLED\r\n")
    assert sent(itip.organizer_messages(old, cancelled, ORGANIZER)) == {BOB: ("CANCEL", True),
                                                                        CAROL: ("CANCEL", True)}
    assert itip.organizer_messages(cancelled, cancelled, ORGANIZER) == []  # cancelled once, not twice
    assert itip.organizer_messages(cancelled, None, ORGANIZER) == []


def test_recurring_event_attendees_per_instance():
    rid = "20250317T100000Z"
    new = event(BOB, CAROL, extra="RRULE:FREQ=WEEKLY;COUNT=4\r\n", overrides=override(rid, BOB, EXT))
    messages = {m.recipient: m for m in itip.organizer_messages(None, new, ORGANIZER)}
    assert set(messages) == {BOB, CAROL, EXT}
    bob_keys = [itip.instance_key(c) for c in itip.components(messages[BOB].calendar)]
    assert bob_keys == ["", "2025-03-17T10:00:00+00:00"]
    carol = itip.components(messages[CAROL].calendar)
    assert len(carol) == 1 and "EXDATE" in carol[0]  # not invited to the moved instance
    ext = itip.components(messages[EXT].calendar)
    assert [itip.instance_key(c) for c in ext] == ["2025-03-17T10:00:00+00:00"]
    # Moving only the override's time: a significant change for those in it.
    later = event(BOB, CAROL, extra="RRULE:FREQ=WEEKLY;COUNT=4\r\n",
                  overrides=override(rid, BOB, EXT).replace("DTEND:20250317T120000Z", "DTEND:20250317T130000Z"))
    assert sent(itip.organizer_messages(new, later, ORGANIZER)) == {BOB: ("REQUEST", True), EXT: ("REQUEST", True)}


# --- attendee side ------------------------------------------------------------------------------------

def accepted(calendar: icalendar.Calendar, address: str, partstat: str = "ACCEPTED") -> icalendar.Calendar:
    changed = icalendar.Calendar.from_ical(calendar.to_ical())
    for component in itip.components(changed):
        found = itip.find_attendee(component, address)
        if found is not None:
            found.params["PARTSTAT"] = partstat
    return changed


def test_partstat_change_replies_with_only_the_attendee():
    copy = event(BOB, CAROL)
    assert attendee.reply_message(copy, copy, BOB) is None
    assert attendee.reply_message(copy, accepted(copy, CAROL), BOB) is None  # not bob's own answer
    reply = attendee.reply_message(copy, accepted(copy, BOB), BOB)
    assert reply.recipient == ORGANIZER and reply.method == "REPLY"
    only = itip.components(reply.calendar)[0]
    assert [str(a) for a in itip.attendees(only)] == [BOB] and only["ATTENDEE"].params["PARTSTAT"] == "ACCEPTED"
    declined = attendee.reply_message(copy, None, BOB, declined=True)
    assert itip.components(declined.calendar)[0]["ATTENDEE"].params["PARTSTAT"] == "DECLINED"


def test_reply_updates_the_organizer_copy_and_a_request_keeps_the_attendee_partstat_and_alarms():
    organizer_copy = event(BOB, CAROL)
    reply = attendee.reply_message(organizer_copy, accepted(organizer_copy, BOB), BOB)
    assert attendee.apply_reply(organizer_copy, reply.calendar, BOB)
    assert not attendee.apply_reply(organizer_copy, reply.calendar, BOB)  # already applied
    assert itip.find_attendee(itip.components(organizer_copy)[0], BOB).params["PARTSTAT"] == "ACCEPTED"

    bob_copy = accepted(event(BOB, CAROL), BOB)
    itip.components(bob_copy)[0].add_component(icalendar.Alarm.from_ical(
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:x\r\nEND:VALARM\r\n"))
    update = itip.organizer_messages(event(BOB, CAROL), event(BOB, CAROL, summary="Renamed"), ORGANIZER)[0]
    merged = attendee.attendee_copy(update.calendar, bob_copy, BOB)
    component = itip.components(merged)[0]
    assert "METHOD" not in merged and str(component["SUMMARY"]) == "Renamed"
    assert itip.find_attendee(component, BOB).params["PARTSTAT"] == "ACCEPTED"
    assert [c.name for c in component.subcomponents] == ["VALARM"]


def test_schedule_status_is_written_only_when_it_changes():
    calendar = event(BOB, CAROL)
    assert itip.set_schedule_status(calendar, {BOB: "1.2"})
    assert not itip.set_schedule_status(calendar, {BOB: "1.2"})
    assert b"SCHEDULE-STATUS=1.2:mailto:bob@localhost" in calendar.to_ical()


# --- through the store ----------------------------------------------------------------------------------

@pytest.fixture
def users(db):
    def add(d):
        for name in ("alice", "bob", "carol"):
            d.execute("INSERT INTO users (name, password_hash, created_at) VALUES (?, 'x', 'now')", [name])
            ensure_defaults(d, name)
            ensure_mailboxes(d, name)
    write(db, add)
    return db


def put_as_owner(db, owner: str, name: str, calendar: icalendar.Calendar | bytes):
    raw = calendar if isinstance(calendar, bytes) else calendar.to_ical()

    def put(d):
        return implicit.scheduled_put(d, SETTINGS, default_calendar(d, owner), name, raw)[2]
    return write(db, put)


def test_delivery_goes_through_the_store_so_sync_sees_it(users):
    db = users
    inbox = mailbox(db, "bob", INBOX)
    bob_calendar = collection_by_name(db, "bob", CALENDAR, "calendar")
    inbox_token, calendar_token = inbox.sync_token, bob_calendar.sync_token
    outcome = put_as_owner(db, "alice", "ev-1.ics", event(BOB, CAROL, EXT))
    assert outcome.rewritten and outcome.mail_queued
    assert len(changes_since(db, inbox.id, inbox_token).changed) == 1
    assert changes_since(db, bob_calendar.id, calendar_token).changed == ["ev-1.ics"]
    queued = list(db.query("SELECT recipient, method, message FROM dav_outgoing_mail"))
    assert [(q["recipient"], q["method"]) for q in queued] == [(EXT, "REQUEST")]
    mail = email.message_from_bytes(queued[0]["message"])
    assert mail["To"] == "ext@example.org" and mail["Reply-To"] == "alice@localhost"
    assert [p.get_content_type() for p in mail.walk()][1:] == ["text/plain", "text/calendar"]

    # bob accepts by PUTting his copy: alice's copy gets a new ETag and a change-log entry.
    alice_calendar = collection_by_name(db, "alice", CALENDAR, "calendar")
    before = get_item(db, alice_calendar.id, "ev-1.ics")
    bob_copy = icalendar.Calendar.from_ical(get_item(db, bob_calendar.id, "ev-1.ics").raw)
    put_as_owner(db, "bob", "ev-1.ics", accepted(bob_copy, BOB))
    after = get_item(db, alice_calendar.id, "ev-1.ics")
    assert after.etag != before.etag and after.seq > before.seq
    assert itip.find_attendee(itip.components(itip.parse(after.raw))[0], BOB).params["PARTSTAT"] == "ACCEPTED"
    assert [i.name for i in list_items(db, mailbox(db, "alice", INBOX).id)] != []


def test_a_failed_delivery_is_reported_and_does_not_fail_the_put(users):
    db = users
    # carol's only calendar takes tasks, not events: her delivery fails alone (5.1).
    write(db, lambda d: d.execute("DELETE FROM dav_collections WHERE owner = 'carol' AND name = 'calendar'"))
    write(db, lambda d: create_collection(d, "carol", CALENDAR, "tasks", components=("VTODO",)))
    outcome = put_as_owner(db, "alice", "ev-2.ics", event(BOB, CAROL, uid="ev-2"))
    component = itip.components(itip.parse(outcome.raw))[0]
    assert itip.find_attendee(component, CAROL).params["SCHEDULE-STATUS"] == "5.1"
    assert itip.find_attendee(component, BOB).params["SCHEDULE-STATUS"] == "1.2"
    assert list_items(db, mailbox(db, "carol", INBOX).id) == []  # rolled back to its savepoint


def test_plain_events_are_stored_unchanged(users):
    raw = (b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:p\r\nDTSTAMP:20250101T000000Z\r\n"
           b"DTSTART:20250101T100000Z\r\nSUMMARY:Plain\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    outcome = put_as_owner(users, "alice", "p.ics", raw)
    assert outcome.raw is raw and not outcome.rewritten and not outcome.mail_queued


def test_imip_mail_names_the_method():
    message = itip.organizer_messages(None, event(EXT), ORGANIZER)[0]
    mail = imip.compose(SETTINGS, ORGANIZER, message)
    calendar_part = next(p for p in mail.walk() if p.get_content_type() == "text/calendar")
    assert calendar_part.get_param("method") == "REQUEST"
    assert mail["Subject"] == "Invitation: Planning"
