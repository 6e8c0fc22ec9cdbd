"""iTIP on the attendee's side, on parsed iCalendar: the REPLY a PARTSTAT change sends, that REPLY
applied to the organizer's object, and a REQUEST or CANCEL merged into the attendee's copy."""
from __future__ import annotations

import copy

import icalendar

from .addresses import normalize
from .itip import (
    SERVER_PARAMS,
    Message,
    attendees,
    build,
    components,
    find_attendee,
    instance_key,
    organizer,
    timing,
)


def reply_message(old: icalendar.Calendar | None, new: icalendar.Calendar | None, attendee: str, *,
                  declined: bool = False) -> Message | None:
    """The REPLY an attendee's change of their own PARTSTAT sends to the organizer (None: no change).

    `declined`: the attendee deleted their copy (`old`), which declines every instance."""
    target = organizer(new if new is not None else old)
    if target is None:
        return None
    if declined:
        changed = [c for c in components(old) if find_attendee(c, attendee) is not None]
        partstats = {instance_key(c): "DECLINED" for c in changed}
        source = old
    else:
        earlier = {instance_key(c): _partstat(c, attendee) for c in components(old)}
        changed, partstats = [], {}
        for component in components(new):
            mine = find_attendee(component, attendee)
            if mine is None:
                continue
            now = _partstat(component, attendee)
            if now != earlier.get(instance_key(component), "NEEDS-ACTION"):
                changed.append(component)
                partstats[instance_key(component)] = now
        source = new
    if not changed:
        return None
    replies = []
    for component in changed:
        reply = copy.deepcopy(component)
        mine = copy.deepcopy(find_attendee(component, attendee))
        mine.params["PARTSTAT"] = partstats[instance_key(component)]
        for param in (*SERVER_PARAMS, "RSVP"):
            mine.params.pop(param, None)
        reply.pop("ATTENDEE", None)
        reply.add("ATTENDEE", mine)
        reply.subcomponents = []
        replies.append(reply)
    return Message(target, "REPLY", build("REPLY", source, replies))


def apply_reply(calendar: icalendar.Calendar, reply: icalendar.Calendar, attendee: str) -> bool:
    """Set the attendee's PARTSTAT in the organizer's object from a REPLY; True if anything changed.

    A reply for an instance the organizer has no override for updates nothing
    (the organizer's client owns the shape of the series)."""
    by_key = {instance_key(c): c for c in components(calendar)}
    changed = False
    for answer in components(reply):
        target = by_key.get(instance_key(answer))
        replied = find_attendee(answer, attendee)
        current = None if target is None else find_attendee(target, attendee)
        if replied is None or current is None:
            continue
        partstat = str(replied.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
        if str(current.params.get("PARTSTAT", "")).upper() != partstat:
            current.params["PARTSTAT"] = partstat
            current.params.pop("RSVP", None)
            changed = True
    return changed


def attendee_copy(message: icalendar.Calendar, current: icalendar.Calendar | None,
                  attendee: str) -> icalendar.Calendar:
    """The attendee's stored copy after a REQUEST or CANCEL: the organizer's components, with the
    attendee's own PARTSTAT (unless the instance moved: then the organizer's, NEEDS-ACTION as a rule) and
    alarms kept from the copy they had."""
    result = copy.deepcopy(message)
    result.pop("METHOD", None)
    earlier = {instance_key(c): c for c in components(current)}
    for component in components(result):
        before = earlier.get(instance_key(component))
        if before is None:
            continue
        mine, theirs = find_attendee(component, attendee), find_attendee(before, attendee)
        if (mine is not None and theirs is not None and component.get("STATUS") != "CANCELLED"
                and timing(component) == timing(before)):
            partstat = theirs.params.get("PARTSTAT")
            if partstat:
                mine.params["PARTSTAT"] = partstat
        component.subcomponents.extend(a for a in before.subcomponents if a.name == "VALARM")
    return result


def keep_partstats(new: icalendar.Calendar, stored: icalendar.Calendar, organizer_address: str | None) -> bool:
    """Carry the attendees' PARTSTATs of the stored organizer copy into `new` (their replies win over
    what an organizer's client last saw, for instances that did not move); True if `new` changed."""
    stored_by_key = {instance_key(c): c for c in components(stored)}
    changed = False
    for component in components(new):
        before = stored_by_key.get(instance_key(component))
        if before is None or timing(component) != timing(before):
            continue
        for attendee in attendees(component):
            address = normalize(attendee)
            earlier = find_attendee(before, address)
            if address == organizer_address or earlier is None or "PARTSTAT" not in earlier.params:
                continue
            if attendee.params.get("PARTSTAT") != earlier.params["PARTSTAT"]:
                attendee.params["PARTSTAT"] = earlier.params["PARTSTAT"]
                changed = True
    return changed


def _partstat(component: icalendar.Component, address: str) -> str | None:
    attendee = find_attendee(component, address)
    return None if attendee is None else str(attendee.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
