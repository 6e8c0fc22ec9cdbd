"""Principal searches: how a client completes an attendee's name while it is typed.

RFC 3744 §9.4 principal-property-search and §9.5 principal-search-property-set
(Thunderbird, DAVx⁵, Evolution), and CalendarServer's calendarserver-principal-search
(Apple Calendar on macOS and iOS: a few search tokens, each of which must match).

Every user of this server is a household member with one principal, and a search
sees them all: by name (displayname; CalendarServer's first-name and last-name are
searched as the name, there being no other), by email address (CS:email-address-set),
by calendar user address and by calendar-user-type (INDIVIDUAL for everyone).
Answers hold the principals' hrefs and the principal properties asked for, nothing
else. The body's Depth must be 0 (RFC 3744 §9.4); CalendarServer's limit/nresults
cuts an answer short with a 507 response saying so (RFC 5323 §5.17).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

from aiohttp import web

from services.core.errors import BadRequest
from services.core.http import CONFIG, DATABASE
from services.core.multistatus import xml_bytes_response, xml_response

from ..errors import CALDAV, DAV
from ..scheduling.addresses import Settings
from ..scheduling.properties import scheduling_properties
from .paths import PRINCIPAL, PRINCIPALS, ROOT, Target
from .properties import Resource, properties
from .report_output import multistatus_body, parse_limit, truncated_response
from .resources import member_names
from .xmlio import CALSERVER, element, property_xml, response_xml, status_response, tag

DISPLAYNAME, EMAILS = tag(DAV, "displayname"), tag(CALSERVER, "email-address-set")
ADDRESSES, USER_TYPE = tag(CALDAV, "calendar-user-address-set"), tag(CALDAV, "calendar-user-type")
# What principal-search-property-set offers, with the description a client may show.
SEARCHABLE = {DISPLAYNAME: "Name", EMAILS: "Email addresses", ADDRESSES: "Calendar user addresses",
              USER_TYPE: "Calendar user type"}
NAME_PARTS = (tag(CALSERVER, "first-name"), tag(CALSERVER, "last-name"))  # searched as the name
MATCH_TYPES = ("contains", "starts-with", "ends-with", "equals")
INDIVIDUAL = "INDIVIDUAL"
# calendarserver-principal-search contexts whose principals are people (the others: rooms, groups).
PEOPLE_CONTEXTS = (None, "attendee", "user")


@dataclass(frozen=True)
class Member:
    """One household member as a search sees them: the values of each searchable property."""

    user: str
    values: dict[str, list[str]]
    properties: dict


@dataclass(frozen=True)
class Criterion:
    """One DAV:property-search: any of `names` matches `text` (`match_type`, caseless or not)."""

    names: tuple[str, ...]
    text: str
    match_type: str = "contains"
    caseless: bool = True

    def matches(self, member: Member) -> bool:
        return any(_matches(value, self) for name in self.names for value in member.values.get(name, ()))


# What a search body holds besides the properties asked for.
_SEARCH_PARTS = frozenset((tag(DAV, "property-search"), tag(DAV, "prop"), tag(DAV, "apply-to-principal-collection-set"),
                           tag(CALSERVER, "search-token"), tag(CALSERVER, "limit")))


async def principal_property_search(request: web.Request, target: Target, user: str,
                                    body: ET.Element) -> web.Response:
    _require_depth_zero(request)
    test = body.get("test", "allof")
    if test not in ("allof", "anyof"):
        raise BadRequest(f"principal-property-search test must be allof or anyof, not {test!r}")
    # None at all (python-caldav's principals() with no name): every member, as an empty filter selects.
    criteria = [_criterion(search) for search in body.findall(tag(DAV, "property-search"))]
    whole_set = body.find(tag(DAV, "apply-to-principal-collection-set")) is not None
    wanted_type = (body.get("type") or INDIVIDUAL).upper()  # CalendarServer's filter by kind of principal

    def selected(member: Member) -> bool:
        if wanted_type != INDIVIDUAL:
            return False
        if not whole_set and target.level not in (ROOT, PRINCIPALS) and target != Target(PRINCIPAL, member.user):
            return False  # RFC 3744 §9.4: the request-URI and the principals below it
        found = [criterion.matches(member) for criterion in criteria]
        return not criteria or (any(found) if test == "anyof" else all(found))

    return await _answer(request, user, body, selected, parse_limit(body, CALSERVER))


async def calendarserver_principal_search(request: web.Request, target: Target, user: str,
                                          body: ET.Element) -> web.Response:
    tokens = [(node.text or "").strip() for node in body.findall(tag(CALSERVER, "search-token"))]
    tokens = [token for token in tokens if token]
    criteria = [Criterion((DISPLAYNAME, EMAILS, ADDRESSES), token) for token in tokens]
    people = body.get("context") in PEOPLE_CONTEXTS

    def selected(member: Member) -> bool:
        return people and bool(criteria) and all(criterion.matches(member) for criterion in criteria)

    return await _answer(request, user, body, selected, parse_limit(body, CALSERVER))


async def principal_search_property_set(request: web.Request, target: Target, user: str,
                                        body: ET.Element) -> web.Response:
    _require_depth_zero(request)
    offered = []
    for name, description in SEARCHABLE.items():
        text = element(tag(DAV, "description"), description)
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        offered.append(element(tag(DAV, "principal-search-property"),
                               children=[element(tag(DAV, "prop"), children=[element(name)]), text]))
    return xml_response(element(tag(DAV, "principal-search-property-set"), children=offered))


async def _answer(request: web.Request, user: str, body: ET.Element, selected, limit: int | None) -> web.Response:
    prop = body.find(tag(DAV, "prop"))
    wanted = [child.tag for child in prop] if prop is not None else []
    if not wanted:  # python-caldav writes the properties beside an empty DAV:prop, not inside it
        wanted = [child.tag for child in body if child.tag not in _SEARCH_PARTS]
    settings = Settings.from_config(request.app[CONFIG].dav)
    members = [m for m in await request.app[DATABASE].read(lambda db: _members(db, settings, user)) if selected(m)]
    shown = members if limit is None else members[:limit]
    responses = [_response(member, wanted) for member in shown]
    if len(shown) < len(members):
        responses.append(truncated_response(request.path))
    return xml_bytes_response(multistatus_body(responses))


def _members(db, settings: Settings, user: str) -> list[Member]:
    members = []
    for name in member_names(db):
        target = Target(PRINCIPAL, name)
        values = properties(Resource(target, extra=scheduling_properties(db, settings, target, None)), user)
        members.append(Member(name, {
            DISPLAYNAME: [name], **{part: [name] for part in NAME_PARTS},
            EMAILS: [node.text for node in values[EMAILS]],
            ADDRESSES: [node.text for node in values[ADDRESSES]],
            USER_TYPE: [values[USER_TYPE]],
        }, values))
    return members


def _response(member: Member, wanted: list[str]) -> str:
    if not wanted:  # no DAV:prop: the hrefs alone (a response needs a status or a propstat)
        return status_response(Target(PRINCIPAL, member.user).path, 200)
    found = [property_xml(name, member.properties[name]) for name in wanted if name in member.properties]
    missing = [property_xml(name) for name in wanted if name not in member.properties]
    return response_xml(Target(PRINCIPAL, member.user).path, found, missing)


def _criterion(search: ET.Element) -> Criterion:
    prop, match = search.find(tag(DAV, "prop")), search.find(tag(DAV, "match"))
    if prop is None or match is None or len(prop) == 0:
        raise BadRequest("each DAV:property-search needs a DAV:prop and a DAV:match")
    match_type = match.get("match-type", "contains")
    if match_type not in MATCH_TYPES:
        raise BadRequest(f"match-type must be one of {', '.join(MATCH_TYPES)}, not {match_type!r}")
    caseless = match.get("caseless", "yes")
    if caseless not in ("yes", "no"):
        raise BadRequest(f"caseless must be yes or no, not {caseless!r}")
    return Criterion(tuple(child.tag for child in prop), (match.text or "").strip(), match_type, caseless == "yes")


def _matches(value: str, criterion: Criterion) -> bool:
    text = criterion.text
    if criterion.caseless:
        value, text = value.casefold(), text.casefold()
    if criterion.match_type == "starts-with":
        return value.startswith(text) or value.startswith(f"mailto:{text}")
    if criterion.match_type == "ends-with":
        return value.endswith(text)
    if criterion.match_type == "equals":
        return value == text
    return text in value


def _require_depth_zero(request: web.Request) -> None:
    depth = request.headers.get("Depth", "0").strip()
    if depth != "0":
        raise BadRequest(f"this REPORT is asked with Depth: 0, not {depth!r} (RFC 3744 §9.4)")
