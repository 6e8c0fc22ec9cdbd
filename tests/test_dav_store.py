"""CalDAV/CardDAV storage: collections, items with ETags and conditions, UIDs, sync tokens,
time bounds for the range index, validation of iCalendar and vCard, raw bytes kept as sent."""
import time
from datetime import datetime, timezone

import pytest

from services.core.db import write
from services.core.errors import BadRequest, Conflict, Forbidden, NotFound
from services.dav.errors import CALDAV, CARDDAV, DAV, Precondition, PreconditionFailed
from services.dav.ical import parse_calendar, occurrences
from services.dav.store import (ADDRESSBOOK, CALENDAR, changes_since, collection_by_name, copy_item,
                                create_collection, delete_collection, delete_item, ensure_defaults,
                                get_collection, get_item, get_items, items_in_range, list_collections,
                                list_items, move_item, put_item, revoke_share, share_collection, shares_of,
                                sync_token, update_properties)
from services.dav.vcard import Card, parse_vcard


@pytest.fixture
def cal(db):
    return write(db, lambda d: create_collection(d, "alice", CALENDAR, "work")).id


@pytest.fixture
def book(db):
    return write(db, lambda d: create_collection(d, "alice", ADDRESSBOOK, "people")).id


def utc(text):
    return int(datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp())


def ics(body, uid="a"):
    body = body.replace("{uid}", uid)
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//hearth//test//EN\r\n" + body
            + "END:VCALENDAR\r\n").encode()


def event(uid="a", start="20240110T100000Z", end="20240110T110000Z", extra=""):
    return ics(f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:{start}\r\n"
               f"DTEND:{end}\r\n{extra}END:VEVENT\r\n")


def vcard(uid="c1", fn="Jane Doe", version="3.0", extra=""):
    return (f"BEGIN:VCARD\r\nVERSION:{version}\r\nUID:{uid}\r\nFN:{fn}\r\n"
            f"N:Doe;Jane;;;\r\n{extra}END:VCARD\r\n").encode()


def put(db, collection, name, raw, **kw):
    return write(db, lambda d: put_item(d, collection, name, raw, **kw))


def precondition(caught, element, namespace=CALDAV):
    assert isinstance(caught.value, Precondition), caught.value
    assert (caught.value.namespace, caught.value.element) == (namespace, element), caught.value
    assert caught.value.status == 403


# --- collections -------------------------------------------------------------

def test_collections_create_list_update_delete(db):
    created = write(db, lambda d: create_collection(d, "alice", CALENDAR, "family", displayname="Family",
                                                    color="#ff0000", components=("VEVENT",)))
    assert (created.kind, created.components, created.seq, created.ctag) == (CALENDAR, ("VEVENT",), 0, "0")
    assert created.sync_token == sync_token(created.id, 0)
    write(db, lambda d: create_collection(d, "alice", ADDRESSBOOK, "family"))  # homes are separate
    with pytest.raises(Conflict):
        write(db, lambda d: create_collection(d, "alice", CALENDAR, "family"))
    for bad in ("", "a/b", "..", " x"):
        with pytest.raises(BadRequest):
            write(db, lambda d: create_collection(d, "alice", CALENDAR, bad))
    with pytest.raises(BadRequest):
        write(db, lambda d: create_collection(d, "alice", ADDRESSBOOK, "x", components=("VEVENT",)))
    assert [(c.kind, c.name) for c in list_collections(db, "alice")] == [
        (ADDRESSBOOK, "family"), (CALENDAR, "family")]
    changed = write(db, lambda d: update_properties(d, created.id, {"displayname": "Fam", "color": None,
                                                                     "description": "us"}))
    assert (changed.displayname, changed.color, changed.description) == ("Fam", None, "us")
    with pytest.raises(BadRequest):
        write(db, lambda d: update_properties(d, created.id, {"components": "VTODO"}))
    write(db, lambda d: put_item(d, created.id, "e.ics", event()))
    write(db, lambda d: delete_collection(d, created.id))
    with pytest.raises(NotFound):
        get_collection(db, created.id)
    assert db.execute("SELECT count(*) FROM dav_items").fetchone()[0] == 0
    again = write(db, lambda d: create_collection(d, "alice", CALENDAR, "family"))
    assert again.id != created.id  # ids are never reused, so old sync tokens stay foreign


def test_defaults_are_created_once_per_kind(db):
    created = write(db, lambda d: ensure_defaults(d, "bob"))
    assert sorted((c.kind, c.name) for c in created) == [(ADDRESSBOOK, "contacts"), (CALENDAR, "calendar")]
    assert created[0].components == ("VEVENT", "VTODO", "VJOURNAL")
    assert write(db, lambda d: ensure_defaults(d, "bob")) == []
    cal = collection_by_name(db, "bob", CALENDAR, "calendar")
    write(db, lambda d: update_properties(d, cal.id, {"displayname": "Mine"}))
    assert write(db, lambda d: ensure_defaults(d, "bob")) == []
    assert len(list_collections(db, "bob")) == 2


def test_shares_show_in_the_grantees_list_with_their_mode(db, cal):
    write(db, lambda d: share_collection(d, cal, "bob", "read"))
    assert [(c.owner, c.name, c.access) for c in list_collections(db, "bob")] == [("alice", "work", "read")]
    write(db, lambda d: share_collection(d, cal, "bob", "read-write"))
    assert shares_of(db, cal) == {"bob": "read-write"}
    with pytest.raises(BadRequest):
        write(db, lambda d: share_collection(d, cal, "alice", "read"))
    with pytest.raises(BadRequest):
        write(db, lambda d: share_collection(d, cal, "carol", "admin"))
    write(db, lambda d: revoke_share(d, cal, "bob"))
    assert list_collections(db, "bob") == []
    with pytest.raises(NotFound):
        write(db, lambda d: revoke_share(d, cal, "bob"))


# --- items, ETags, conditions -----------------------------------------------

def test_put_get_update_delete_with_etags_and_conditions(db, cal):
    item, created = put(db, cal, "a.ics", event(), if_none_match=True)
    assert created and item.uid == "a" and item.component == "VEVENT" and item.etag.startswith('"')
    assert get_item(db, cal, "a.ics").raw == event()
    with pytest.raises(PreconditionFailed) as caught:
        put(db, cal, "a.ics", event(extra="SUMMARY:x\r\n"), if_none_match=True)
    assert caught.value.status == 412
    with pytest.raises(PreconditionFailed):
        put(db, cal, "a.ics", event(extra="SUMMARY:x\r\n"), if_match='"stale"')
    with pytest.raises(PreconditionFailed):
        put(db, cal, "new.ics", event(uid="n"), if_match=item.etag)
    with pytest.raises(PreconditionFailed):  # a weak tag never matches strongly
        put(db, cal, "a.ics", event(extra="SUMMARY:x\r\n"), if_match="W/" + item.etag)
    updated, created = put(db, cal, "a.ics", event(extra="SUMMARY:x\r\n"), if_match=f'"zz", {item.etag}')
    assert not created and updated.etag != item.etag and updated.seq > item.seq
    same, created = put(db, cal, "a.ics", event(extra="SUMMARY:x\r\n"))
    assert not created and same.seq == updated.seq  # identical bytes: not a change
    assert get_collection(db, cal).seq == 2
    with pytest.raises(PreconditionFailed):
        write(db, lambda d: delete_item(d, cal, "a.ics", if_match=item.etag))
    write(db, lambda d: delete_item(d, cal, "a.ics", if_match="*"))
    with pytest.raises(NotFound):
        get_item(db, cal, "a.ics")
    with pytest.raises(NotFound):
        write(db, lambda d: delete_item(d, cal, "a.ics"))
    with pytest.raises(NotFound):
        put(db, 999, "x.ics", event())
    with pytest.raises(BadRequest):
        put(db, cal, "../x.ics", event())


def test_uid_conflicts_name_the_existing_resource_and_change_nothing(db, cal, book):
    put(db, cal, "a.ics", event(uid="same"))
    with pytest.raises(Precondition) as caught:
        put(db, cal, "b.ics", event(uid="same"))
    precondition(caught, "no-uid-conflict")
    assert caught.value.href == "a.ics"
    with pytest.raises(Precondition) as caught:  # a PUT cannot change the UID of a resource
        put(db, cal, "a.ics", event(uid="other"))
    precondition(caught, "no-uid-conflict")
    put(db, book, "c.vcf", vcard(uid="u1"))
    with pytest.raises(Precondition) as caught:
        put(db, book, "d.vcf", vcard(uid="u1", fn="Other"))
    precondition(caught, "no-uid-conflict", CARDDAV)
    assert [i.name for i in list_items(db, cal)] == ["a.ics"]
    assert get_collection(db, cal).seq == 1


def test_component_must_be_supported_by_the_collection(db):
    events = write(db, lambda d: create_collection(d, "alice", CALENDAR, "events", components=("VEVENT",)))
    with pytest.raises(Precondition) as caught:
        put(db, events.id, "t.ics", ics("BEGIN:VTODO\r\nUID:t\r\nEND:VTODO\r\n"))
    precondition(caught, "supported-calendar-component")


def test_oversize_item_is_rejected(db, cal):
    big = event(extra="DESCRIPTION:" + "x" * 2000 + "\r\n")
    with pytest.raises(Precondition) as caught:
        put(db, cal, "big.ics", big, max_size=1000)
    precondition(caught, "max-resource-size")
    assert list_items(db, cal) == []


def test_copy_and_move_between_collections_of_the_same_kind(db, cal, book):
    other = write(db, lambda d: create_collection(d, "alice", CALENDAR, "home")).id
    put(db, cal, "a.ics", event(uid="a"))
    copied, created = write(db, lambda d: copy_item(d, cal, "a.ics", other, "copy.ics"))
    assert created and copied.raw == event(uid="a")
    with pytest.raises(PreconditionFailed):
        write(db, lambda d: copy_item(d, cal, "a.ics", other, "copy.ics", overwrite=False))
    with pytest.raises(Precondition) as caught:  # the same UID twice in one calendar
        write(db, lambda d: copy_item(d, cal, "a.ics", cal, "b.ics"))
    precondition(caught, "no-uid-conflict")
    with pytest.raises(Forbidden):
        write(db, lambda d: copy_item(d, cal, "a.ics", book, "a.vcf"))
    token = get_collection(db, cal).sync_token
    renamed, created = write(db, lambda d: move_item(d, cal, "a.ics", cal, "renamed.ics"))
    assert created and renamed.raw == event(uid="a")
    delta = changes_since(db, cal, token)
    assert (delta.changed, delta.deleted) == (["renamed.ics"], ["a.ics"])
    with pytest.raises(PreconditionFailed):
        write(db, lambda d: move_item(d, cal, "renamed.ics", other, "x.ics", if_match='"nope"'))
    put(db, cal, "b.ics", event(uid="b"))
    moved, created = write(db, lambda d: move_item(d, cal, "b.ics", other, "b.ics"))
    assert created and [i.name for i in list_items(db, other)] == ["b.ics", "copy.ics"]
    assert [i.name for i in list_items(db, cal)] == ["renamed.ics"]


# --- sync tokens -------------------------------------------------------------

def test_sync_initial_incremental_tombstones_among_1000_items(db, cal):
    def fill(d):
        for i in range(1000):
            put_item(d, cal, f"e{i:04}.ics", event(uid=f"u{i}"))
    started = time.perf_counter()
    write(db, fill)
    print(f"\n1,000 PUTs in one transaction: {time.perf_counter() - started:.2f} s")
    initial = changes_since(db, cal, None)
    assert len(initial.changed) == 1000 and initial.deleted == []
    assert initial.token == get_collection(db, cal).sync_token
    assert changes_since(db, cal, initial.token).changed == []
    put(db, cal, "e0500.ics", event(uid="u500", extra="SUMMARY:moved\r\n"))
    started = time.perf_counter()
    delta = changes_since(db, cal, initial.token)
    print(f"incremental sync after 1 change among 1,000: {(time.perf_counter() - started) * 1000:.2f} ms")
    assert (delta.changed, delta.deleted) == (["e0500.ics"], [])
    write(db, lambda d: delete_item(d, cal, "e0001.ics"))
    after_delete = changes_since(db, cal, delta.token)
    assert (after_delete.changed, after_delete.deleted) == ([], ["e0001.ics"])
    from_start = changes_since(db, cal, initial.token)  # old tokens never expire
    assert (from_start.changed, from_start.deleted) == (["e0500.ics"], ["e0001.ics"])
    put(db, cal, "e0001.ics", event(uid="u1"))
    assert changes_since(db, cal, delta.token).changed == ["e0001.ics"]  # recreated: a change, not a delete


def test_invalid_foreign_and_future_tokens_are_valid_sync_token_errors(db, cal):
    other = write(db, lambda d: create_collection(d, "alice", CALENDAR, "other")).id
    put(db, cal, "a.ics", event())
    for token in ("garbage", "http://hearth/ns/sync/x-1", sync_token(other, 0), sync_token(cal, 2),
                  sync_token(cal, 1) + "0"):
        with pytest.raises(Precondition) as caught:
            changes_since(db, cal, token)
        precondition(caught, "valid-sync-token", DAV)
    assert changes_since(db, cal, sync_token(cal, 1)).changed == []


# --- time bounds and the range index ----------------------------------------

VTIMEZONE = ("BEGIN:VTIMEZONE\r\nTZID:W. Europe Standard Time\r\n"
             "BEGIN:STANDARD\r\nDTSTART:16010101T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
             "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r\nEND:STANDARD\r\n"
             "BEGIN:DAYLIGHT\r\nDTSTART:16010101T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n"
             "RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r\nEND:DAYLIGHT\r\nEND:VTIMEZONE\r\n")


def vevent(lines):
    return "BEGIN:VEVENT\r\nUID:{uid}\r\n" + "".join(line + "\r\n" for line in lines) + "END:VEVENT\r\n"


BOUNDS = {
    "dtstart and dtend": (vevent(["DTSTART:20240110T100000Z", "DTEND:20240110T110000Z"]),
                          "2024-01-10T10:00", "2024-01-10T11:00"),
    "dtstart and duration": (vevent(["DTSTART:20240110T100000Z", "DURATION:PT90M"]),
                             "2024-01-10T10:00", "2024-01-10T11:30"),
    "instant (no end)": (vevent(["DTSTART:20240110T100000Z"]), "2024-01-10T10:00", "2024-01-10T10:00"),
    "all-day, one day, floating +-14 h": (vevent(["DTSTART;VALUE=DATE:20240310"]),
                                          "2024-03-09T10:00", "2024-03-11T14:00"),
    "all-day, two days": (vevent(["DTSTART;VALUE=DATE:20240310", "DTEND;VALUE=DATE:20240312"]),
                          "2024-03-09T10:00", "2024-03-12T14:00"),
    "floating time +-14 h": (vevent(["DTSTART:20240110T100000", "DTEND:20240110T110000"]),
                             "2024-01-09T20:00", "2024-01-11T01:00"),
    "TZID with VTIMEZONE (Outlook name, summer time)": (
        VTIMEZONE + vevent(["DTSTART;TZID=W. Europe Standard Time:20240710T100000",
                            "DTEND;TZID=W. Europe Standard Time:20240710T110000"]),
        "2024-07-10T08:00", "2024-07-10T09:00"),
    "TZID (Olson) without VTIMEZONE": (vevent(["DTSTART;TZID=America/New_York:20240110T100000",
                                               "DURATION:PT30M"]), "2024-01-10T15:00", "2024-01-10T15:30"),
    "RRULE with UNTIL": (vevent(["DTSTART:20240101T090000Z", "DTEND:20240101T100000Z",
                                 "RRULE:FREQ=WEEKLY;UNTIL=20240129T090000Z"]),
                         "2024-01-01T09:00", "2024-01-29T10:00"),
    "RRULE with COUNT across DST (TZID)": (
        vevent(["DTSTART;TZID=Europe/Berlin:20240301T100000", "DTEND;TZID=Europe/Berlin:20240301T110000",
                "RRULE:FREQ=MONTHLY;COUNT=2"]), "2024-03-01T09:00", "2024-04-01T09:00"),
    "infinite RRULE": (vevent(["DTSTART:20240101T090000Z", "DTEND:20240101T100000Z", "RRULE:FREQ=WEEKLY"]),
                       "2024-01-01T09:00", None),
    "RDATE after the rule": (vevent(["DTSTART:20240101T090000Z", "DTEND:20240101T100000Z",
                                     "RRULE:FREQ=DAILY;COUNT=3", "RDATE:20240201T090000Z"]),
                             "2024-01-01T09:00", "2024-02-01T10:00"),
    "EXDATE of the last instance": (vevent(["DTSTART:20240101T090000Z", "DTEND:20240101T100000Z",
                                            "RRULE:FREQ=DAILY;COUNT=3", "EXDATE:20240103T090000Z"]),
                                    "2024-01-01T09:00", "2024-01-02T10:00"),
    "overridden instance moved later": (
        vevent(["DTSTART:20240101T090000Z", "DTEND:20240101T100000Z", "RRULE:FREQ=DAILY;COUNT=3"])
        + vevent(["RECURRENCE-ID:20240103T090000Z", "DTSTART:20240110T150000Z", "DTEND:20240110T160000Z"]),
        "2024-01-01T09:00", "2024-01-10T16:00"),
    "overridden first instance moved earlier, infinite rule": (
        vevent(["DTSTART:20240101T090000Z", "DTEND:20240101T100000Z", "RRULE:FREQ=DAILY"])
        + vevent(["RECURRENCE-ID:20240101T090000Z", "DTSTART:20231220T090000Z", "DTEND:20231220T100000Z"]),
        "2023-12-20T09:00", None),
    "yearly all-day, COUNT": (vevent(["DTSTART;VALUE=DATE:20240101", "RRULE:FREQ=YEARLY;COUNT=3"]),
                              "2023-12-31T10:00", "2026-01-02T14:00"),
    "VTODO without dates: unbounded": ("BEGIN:VTODO\r\nUID:{uid}\r\nSUMMARY:x\r\nEND:VTODO\r\n", None, None),
    "VTODO with DUE": ("BEGIN:VTODO\r\nUID:{uid}\r\nDUE:20240105T170000Z\r\nEND:VTODO\r\n",
                       "2024-01-05T17:00", "2024-01-05T17:00"),
    "VTODO with DTSTART and DUE": ("BEGIN:VTODO\r\nUID:{uid}\r\nDTSTART:20240101T080000Z\r\n"
                                   "DUE:20240105T170000Z\r\nEND:VTODO\r\n",
                                   "2024-01-01T08:00", "2024-01-05T17:00"),
    "VTODO with DTSTART and DURATION": ("BEGIN:VTODO\r\nUID:{uid}\r\nDTSTART:20240101T080000Z\r\n"
                                        "DURATION:PT2H\r\nEND:VTODO\r\n", "2024-01-01T08:00", "2024-01-01T10:00"),
    "VTODO CREATED and COMPLETED": ("BEGIN:VTODO\r\nUID:{uid}\r\nCREATED:20231201T080000Z\r\n"
                                    "COMPLETED:20240102T080000Z\r\nEND:VTODO\r\n",
                                    "2023-12-01T08:00", "2024-01-02T08:00"),
    "VTODO only CREATED: open-ended": ("BEGIN:VTODO\r\nUID:{uid}\r\nCREATED:20231201T080000Z\r\nEND:VTODO\r\n",
                                       "2023-12-01T08:00", None),
    "recurring VTODO": ("BEGIN:VTODO\r\nUID:{uid}\r\nDTSTART:20240101T080000Z\r\nDUE:20240101T090000Z\r\n"
                        "RRULE:FREQ=WEEKLY;COUNT=2\r\nEND:VTODO\r\n", "2024-01-01T08:00", "2024-01-08T09:00"),
    "VJOURNAL on a date": ("BEGIN:VJOURNAL\r\nUID:{uid}\r\nDTSTART;VALUE=DATE:20240105\r\nEND:VJOURNAL\r\n",
                           "2024-01-04T10:00", "2024-01-06T14:00"),
    "VJOURNAL at a time": ("BEGIN:VJOURNAL\r\nUID:{uid}\r\nDTSTART:20240105T120000Z\r\nEND:VJOURNAL\r\n",
                           "2024-01-05T12:00", "2024-01-05T12:00"),
}


@pytest.mark.parametrize("case", list(BOUNDS))
def test_time_bounds(case):
    body, first, last = BOUNDS[case]
    parsed = parse_calendar(ics(body))
    assert parsed.uid == "a"
    assert (parsed.first_start, parsed.last_end) == (first and utc(first), last and utc(last))


def test_a_finite_rule_too_long_to_expand_is_open_ended_not_wrong():
    body = vevent(["DTSTART:20240110T100000Z", "DTEND:20240110T110000Z",
                   "RRULE:FREQ=DAILY;UNTIL=20440110T100000Z"])
    parsed = parse_calendar(ics(body))
    assert (parsed.first_start, parsed.last_end) == (utc("2024-01-10T10:00"), None)


def test_items_in_range_uses_the_index_and_finds_unbounded_items(db, cal):
    put(db, cal, "jan.ics", event(uid="jan", start="20240110T100000Z", end="20240110T110000Z"))
    put(db, cal, "mar.ics", event(uid="mar", start="20240310T100000Z", end="20240310T110000Z"))
    put(db, cal, "weekly.ics", ics(BOUNDS["infinite RRULE"][0], uid="weekly"))
    put(db, cal, "todo.ics", ics(BOUNDS["VTODO without dates: unbounded"][0], uid="todo"))
    statements = []
    db.conn.set_trace_callback(statements.append)
    try:
        found = items_in_range(db, cal, utc("2024-03-01T00:00"), utc("2024-04-01T00:00"))
    finally:
        db.conn.set_trace_callback(None)
    assert [i.name for i in found] == ["mar.ics", "todo.ics", "weekly.ics"]
    assert found[0].raw is not None
    query = next(sql for sql in statements if "FROM dav_items" in sql)
    plan = " ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + query))
    print("\nplan:", plan)
    assert "USING INDEX dav_items_range (collection_id=? AND last_end>?)" in plan
    assert [i.name for i in items_in_range(db, cal, None, utc("2024-01-01T00:00"))] == ["todo.ics"]
    assert len(items_in_range(db, cal, None, None)) == 4


def test_occurrences_expand_recurrences_with_overrides():
    raw = ics(BOUNDS["overridden instance moved later"][0])
    found = occurrences(raw, datetime(2024, 1, 1, tzinfo=timezone.utc), datetime(2024, 1, 31, tzinfo=timezone.utc))
    starts = sorted(o["DTSTART"].dt for o in found)
    assert starts == [datetime(2024, 1, d, h, tzinfo=timezone.utc) for d, h in ((1, 9), (2, 9), (10, 15))]


# --- leniency, raw bytes, rejections ----------------------------------------

def test_client_quirks_are_accepted_and_bytes_kept_exactly(db, cal):
    outlook = (b"BEGIN:VCALENDAR\r\nPRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\r\n"
               b"VERSION:2.0\r\nMETHOD:PUBLISH\r\nX-MS-OLK-FORCEINSPECTOROPEN:TRUE\r\n"
               + VTIMEZONE.encode() +
               b"BEGIN:VEVENT\r\nCLASS:PUBLIC\r\n"
               b"ORGANIZER;CN=\"Doe, John\":john.doe@example.com\r\n"
               b"DTSTART;TZID=W. Europe Standard Time:20240710T100000\r\n"
               b"DTEND;TZID=W. Europe Standard Time:20240710T110000\r\n"
               b"UID:040000008200E00074C5B7101A82E00800000000\r\n"
               b"X-MICROSOFT-CDO-BUSYSTATUS:BUSY\r\nSUMMARY;LANGUAGE=de-de:Besprechung\r\n"
               b"END:VEVENT\r\nEND:VCALENDAR\r\n")
    lf_and_folding = (b"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:x\nBEGIN:VEVENT\nUID:lf-1\n"
                      b"DTSTART:20240110T100000Z\nSUMMARY:a very long su\n mmary folded with\n\t a tab\n"
                      b"X-CUSTOM;X-PARAM=1:value\nEND:VEVENT\nEND:VCALENDAR")  # no final newline either
    for name, raw in (("outlook.ics", outlook), ("lf.ics", lf_and_folding)):
        item, _ = put(db, cal, name, raw)
        assert get_item(db, cal, name).raw == raw
    assert get_items(db, cal, ["lf.ics", "missing.ics"])["lf.ics"].raw == lf_and_folding
    assert get_item(db, cal, "outlook.ics").first_start == utc("2024-07-10T08:00")


@pytest.mark.parametrize("raw, element", [
    (b"this is not a calendar", "valid-calendar-data"),
    (b"", "valid-calendar-data"),
    (b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\nFN:x\r\nEND:VCARD\r\n", "valid-calendar-data"),
    (b"BEGIN:VEVENT\r\nUID:x\r\nDTSTART:20240101T000000Z\r\nEND:VEVENT\r\n", "valid-calendar-data"),
    (ics(VTIMEZONE), "valid-calendar-object-resource"),  # only a time zone: nothing to store
    (ics(vevent(["DTSTART:20240101T000000Z"]), uid="one") + b"", None),
    (ics(vevent(["DTSTART:20240101T000000Z"]).replace("{uid}", "one")
         + vevent(["DTSTART:20240102T000000Z"]).replace("{uid}", "two")), "valid-calendar-object-resource"),
    (ics(vevent(["DTSTART:20240101T000000Z"]) + "BEGIN:VTODO\r\nUID:{uid}\r\nEND:VTODO\r\n"),
     "valid-calendar-object-resource"),
    (ics("BEGIN:VEVENT\r\nDTSTART:20240101T000000Z\r\nEND:VEVENT\r\n"), "valid-calendar-object-resource"),
    (ics(vevent(["DTSTART:not-a-date"])), "valid-calendar-data"),
    (ics(vevent(["DTSTART:20240101T000000Z", "RRULE:FREQ=SOMETIMES"])), "valid-calendar-data"),
    # RRULE parts no date can match: dateutil would search every year up to 9999 for them
    (ics(vevent(["DTSTART:20240101T000000Z", "RRULE:FREQ=YEARLY;BYMONTH=13"])), "valid-calendar-data"),
    (ics(vevent(["DTSTART:20240101T000000Z", "RRULE:FREQ=MONTHLY;BYMONTHDAY=0"])), "valid-calendar-data"),
    (ics(vevent(["DTSTART:20240101T000000Z", "RRULE:FREQ=YEARLY;BYYEARDAY=-367"])), "valid-calendar-data"),
    (ics(vevent(["DTSTART:20240101T000000Z", "RRULE:FREQ=DAILY;BYHOUR=24"])), "valid-calendar-data"),
    (ics(vevent(["DTSTART:20240101T000000Z", "RRULE:FREQ=DAILY;INTERVAL=0"])), "valid-calendar-data"),
    (ics(vevent(["DTSTART:20240101T000000Z", "RRULE:FREQ=DAILY;COUNT=3;UNTIL=20250101T000000Z"])),
     "valid-calendar-data"),
    (ics(vevent(["DTSTART:20240101T000000Z", "RRULE:FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=-31;BYSETPOS=-1"])), None),
])
def test_broken_calendar_data_is_rejected_with_the_right_precondition(db, cal, raw, element):
    if element is None:  # the control: the same shape, valid
        put(db, cal, "ok.ics", raw)
        return
    with pytest.raises(Precondition) as caught:
        put(db, cal, "bad.ics", raw)
    precondition(caught, element)
    assert list_items(db, cal) == [] and get_collection(db, cal).seq == 0


def test_vcards_21_30_40_parse_and_extract_query_fields(db, book):
    v21 = (b"BEGIN:VCARD\r\nVERSION:2.1\r\nUID:v21\r\nN:Doe;John\r\nFN:John Doe\r\nTEL;HOME;VOICE:+1 555 0100\r\n"
           b"EMAIL;PREF;INTERNET:john@example.org\r\nNOTE;ENCODING=QUOTED-PRINTABLE:caf=C3=A9\r\nEND:VCARD\r\n")
    v30 = vcard(uid="v30", extra="EMAIL;TYPE=INTERNET,WORK:jane@work.example\r\nEMAIL:jane@home.example\r\n"
                                 "TEL;TYPE=CELL:+44 20 7946 0000\r\nX-ABLABEL:custom\r\n")
    v40 = (b"BEGIN:VCARD\nVERSION:4.0\nUID:urn:uuid:4f0b\nFN:Zo\xc3\xab\nEMAIL;TYPE=work:zoe@example.org\n"
           b"TEL;VALUE=uri;TYPE=cell:tel:+1-555-0199\nEND:VCARD\n")
    assert parse_vcard(v21) == Card("v21", "2.1", "John Doe", ("john@example.org",), ("+1 555 0100",))
    assert parse_vcard(v30).emails == ("jane@work.example", "jane@home.example")
    card = parse_vcard(v40)
    assert (card.uid, card.version, card.fn, card.tels) == ("urn:uuid:4f0b", "4.0", "Zoë", ("tel:+1-555-0199",))
    for name, raw in (("a.vcf", v21), ("b.vcf", v30), ("c.vcf", v40)):
        item, created = put(db, book, name, raw)
        assert created and item.component == "VCARD" and get_item(db, book, name).raw == raw


@pytest.mark.parametrize("raw", [
    b"not a vcard",
    ics(vevent(["DTSTART:20240101T000000Z"])),
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:No Uid\r\nEND:VCARD\r\n",
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x\r\nFN:Unclosed\r\n",
    b"BEGIN:VCARD\r\nVERSION:5.0\r\nUID:x\r\nFN:Future\r\nEND:VCARD\r\n",
    vcard(uid="a") + vcard(uid="b"),
])
def test_broken_address_data_is_valid_address_data(db, book, raw):
    with pytest.raises(Precondition) as caught:
        put(db, book, "bad.vcf", raw)
    precondition(caught, "valid-address-data", CARDDAV)
    assert list_items(db, book) == []
