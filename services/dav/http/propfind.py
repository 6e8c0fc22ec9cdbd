"""PROPFIND (RFC 4918 §9.1): prop, allprop and propname requests at Depth 0 or 1.

allprop (and an empty body) lists what RFC 4918 §9.1 promises: its own live
properties and the dead ones a client set (properties.ALLPROP). The computed
properties of CalDAV, CardDAV, scheduling, ACL, sync and CalendarServer's
sharing are named by the RFCs that define them as not returned by allprop;
a client asks for them by name, or adds them with DAV:include. propname
lists every name.

Depth: infinity is refused (DAV:propfind-finite-depth); a missing Depth header
is taken as 0, as Radicale does, rather than RFC 4918's infinity, so a client
that leaves it out gets an answer instead of a 403.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace

from aiohttp import web

from services.core.errors import BadRequest
from services.core.http import CONFIG, DATABASE
from services.core.multistatus import xml_bytes_response

from ..errors import DAV, Precondition
from ..scheduling.addresses import Settings
from ..scheduling.properties import scheduling_properties
from .invites import personal_values, sharing_properties
from .paths import ITEM, Target
from .properties import ALLPROP, Resource, properties
from .resources import children, load
from .xmlio import multistatus_xml, property_xml, read_xml, response_xml, tag


async def propfind(request: web.Request, target: Target, user: str) -> web.Response:
    depth = request.headers.get("Depth", "0").strip().lower()
    if depth == "infinity":
        raise Precondition(DAV, "propfind-finite-depth", "Depth: infinity is not supported")
    if depth not in ("0", "1"):
        raise BadRequest(f"Depth must be 0, 1 or infinity, not {depth!r}")
    mode, wanted = _request(await read_xml(request))

    settings = Settings.from_config(request.app[CONFIG].dav)

    def gather(db) -> list[Resource]:
        resource = load(db, target, user, "read")
        found = [resource, *(children(db, resource) if depth == "1" else ())]
        return [with_extras(db, settings, r, user) for r in found]

    resources = await request.app[DATABASE].read(gather)
    body = multistatus_xml(_describe(resource, user, mode, wanted) for resource in resources)
    return xml_bytes_response(body)


def with_extras(db, settings: Settings, resource: Resource, user: str) -> Resource:
    """The resource with the properties other layers work out from the store (scheduling, sharing) and the
    values `user` set for themselves."""
    if resource.target.level == ITEM:  # items have none: a 10,000-item listing skips the lookups
        return resource
    return replace(resource, extra={**scheduling_properties(db, settings, resource.target, resource.collection),
                                    **sharing_properties(db, settings, resource.target, resource.collection),
                                    **personal_values(db, resource.collection, user)})


def _request(body: ET.Element | None) -> tuple[str, list[str]]:
    """('prop', names) | ('allprop', names included) | ('propname', []) from a PROPFIND body (none means
    allprop)."""
    if body is None:
        return "allprop", []
    if body.tag != tag(DAV, "propfind"):
        raise BadRequest("PROPFIND body must be a DAV:propfind element")
    for child in body:
        if child.tag == tag(DAV, "prop"):
            return "prop", [prop.tag for prop in child]
        if child.tag == tag(DAV, "allprop"):
            return "allprop", [prop.tag for include in body.findall(tag(DAV, "include")) for prop in include]
        if child.tag == tag(DAV, "propname"):
            return "propname", []
    raise BadRequest("DAV:propfind needs prop, allprop or propname")


def _describe(resource: Resource, user: str, mode: str, wanted: list[str]) -> str:
    values = properties(resource, user)
    if mode == "propname":
        return response_xml(resource.target.path, [property_xml(name) for name in values])
    if mode == "allprop":
        wanted = [name for name in values if name in ALLPROP] + [name for name in wanted if name not in ALLPROP]
    found = [property_xml(name, values[name]) for name in wanted if name in values]
    missing = [property_xml(name) for name in wanted if name not in values]
    return response_xml(resource.target.path, found, missing)
