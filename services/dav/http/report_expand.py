"""expand-property (RFC 3253 §3.8): a resource's properties, with the resources their hrefs name described
in place.

Apple Calendar asks it of the user's principal at every start, for the
principals they are a delegate of (CalendarServer's calendar-proxy-read-for
and calendar-proxy-write-for). hearth has no delegation, so those are empty,
and the report answers that truthfully instead of refusing it. Any other
property is expanded the same way, one level deep (the depth clients use):
an href the asking user may not read gets its own 403 or 404 response.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from services.core.errors import HTTPError
from services.core.http import CONFIG, DATABASE
from services.core.multistatus import multistatus, response_element, status_line

from ..errors import DAV
from ..scheduling.addresses import Settings
from .paths import Target, parse_path
from .properties import properties, render
from .propfind import with_extras
from .resources import load
from .xmlio import element, href, tag

MAX_DEPTH = 2  # the property asked for and the one inside it: deep enough for every client seen


@dataclass(frozen=True)
class Wanted:
    """One DAV:property of the request: its Clark name and what to report of the resources it names."""

    name: str
    inside: tuple["Wanted", ...]


async def expand_property(request: web.Request, target: Target, user: str, body: ET.Element) -> web.Response:
    wanted = _wanted(body, 0)
    settings = Settings.from_config(request.app[CONFIG].dav)

    def answer(db) -> ET.Element:
        return _response(db, settings, target, user, wanted)

    return multistatus([await request.app[DATABASE].read(answer)])


def _wanted(node: ET.Element, depth: int) -> tuple[Wanted, ...]:
    if depth >= MAX_DEPTH:
        return ()
    return tuple(Wanted(tag(child.get("namespace") or DAV, child.get("name", "")), _wanted(child, depth + 1))
                 for child in node if child.tag == tag(DAV, "property") and child.get("name"))


def _response(db, settings: Settings, target: Target, user: str, wanted: tuple[Wanted, ...]) -> ET.Element:
    values = properties(with_extras(db, settings, load(db, target, user, "read"), user), user)
    found, missing = [], []
    for want in wanted:
        if want.name not in values:
            missing.append(element(want.name))
            continue
        value = values[want.name]
        hrefs = [] if isinstance(value, str) else [v for v in value if v.tag == tag(DAV, "href")]
        if want.inside and hrefs and len(hrefs) == len(value):
            found.append(element(want.name, children=[_expanded(db, settings, h.text or "", user, want.inside)
                                                      for h in hrefs]))
        else:
            found.append(render(want.name, value))
    return response_element(target.path, {200: found, 404: missing})


def _expanded(db, settings: Settings, link: str, user: str, wanted: tuple[Wanted, ...]) -> ET.Element:
    """The resource an href names, described with `wanted`; a status alone where the user may not see it."""
    try:
        return _response(db, settings, parse_path(urlsplit(link).path), user, wanted)
    except HTTPError as error:  # NotFound, or NeedPrivileges: someone else's resource
        return element(tag(DAV, "response"), children=[href(link), status_line(error.status)])
