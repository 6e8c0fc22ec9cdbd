"""The live properties each kind of DAV resource reports, as PROPFIND returns them.

A property's value is text or a list of child elements; a property a resource
does not have (an unset description, say) is simply absent, so PROPFIND puts it
in the 404 propstat.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from ..errors import CALDAV, CARDDAV, DAV
from ..query.instances import MAX_INSTANCES
from ..store import CALENDAR, MAX_RESOURCE_SIZE, Collection, Item
from .access import PRIVILEGES
from .paths import (COLLECTION, HOME, ITEM, NOTIFICATIONS, PRINCIPAL, PRINCIPAL_COLLECTION, PRINCIPALS, ROOT, Target,
                    home_path, principal_path)
from .xmlio import APPLE, CALSERVER, Value, element, href, tag

# Principal searches (http/report_principals.py) are answered wherever they are asked, as RFC 3744 allows.
PRINCIPAL_REPORTS = ((DAV, "principal-property-search"), (DAV, "principal-search-property-set"),
                     (CALSERVER, "calendarserver-principal-search"))
REPORTS = {CALENDAR: ((CALDAV, "calendar-query"), (CALDAV, "calendar-multiget"), (CALDAV, "free-busy-query"),
                      (DAV, "sync-collection"), (DAV, "expand-property"), *PRINCIPAL_REPORTS),
           "addressbook": ((CARDDAV, "addressbook-query"), (CARDDAV, "addressbook-multiget"),
                           (DAV, "sync-collection"), (DAV, "expand-property"), *PRINCIPAL_REPORTS)}
CONTENT_TYPES = {CALENDAR: "text/calendar; charset=utf-8", "addressbook": "text/vcard; charset=utf-8"}
# What PROPFIND allprop returns (RFC 4918 §9.1): RFC 4918's live properties and the dead properties clients
# set (Apple's colour and order). Every other property here is defined as not returned by allprop: RFC 4791
# §5.2 and §6.2, RFC 6352 §6.2, RFC 6638 §2 and §9, RFC 3744 §5 (owner, privileges, principal-URL),
# RFC 3253 §3.1.5 (supported-report-set), RFC 5397 §3, RFC 6578 §4, and CalendarServer's computed
# sharing, e-mail and delegation properties; CS:getctag and CS:invite are computed too. One exception:
# DAV:current-user-principal (RFC 5397 says SHOULD NOT, not MUST NOT). A client following the 301 of
# /.well-known/caldav loses its PROPFIND's body on the way (Python's requests drops it on a 301 or 302, so
# python-caldav does), which makes its question for the principal an allprop.
ALLPROP = frozenset((tag(DAV, "current-user-principal"), tag(DAV, "resourcetype"), tag(DAV, "displayname"),
                     tag(DAV, "getetag"),
                     tag(DAV, "getcontenttype"), tag(DAV, "getcontentlength"), tag(DAV, "getlastmodified"),
                     tag(DAV, "creationdate"), tag(APPLE, "calendar-color"), tag(APPLE, "calendar-order")))


@dataclass(frozen=True)
class Resource:
    """A resource PROPFIND describes: where it is and, for collections and items, what the store holds."""

    target: Target
    collection: Collection | None = None
    item: Item | None = None
    extra: dict = field(default_factory=dict)  # what other layers add (scheduling/properties.py)


def properties(resource: Resource, user: str) -> dict[str, Value]:
    """Clark name -> value for every property `resource` has, as seen by `user`."""
    target = resource.target
    common: dict[str, Value] = {tag(DAV, "current-user-principal"): [href(principal_path(user))]}
    if target.level in (ROOT, PRINCIPALS, PRINCIPAL):
        common[tag(DAV, "principal-collection-set")] = [href(PRINCIPAL_COLLECTION)]
        common[tag(DAV, "supported-report-set")] = supported_reports(((DAV, "expand-property"), *PRINCIPAL_REPORTS))
    if target.level in (ROOT, PRINCIPALS):
        return {**common, tag(DAV, "resourcetype"): [element(tag(DAV, "collection"))],
                tag(DAV, "displayname"): "hearth" if target.level == ROOT else "principals"}
    if target.level == PRINCIPAL:
        return {**common, **_principal(target.user), **resource.extra}
    if target.level == NOTIFICATIONS:
        return {**common, **resource.extra}
    if target.level == HOME:
        return {**common, tag(DAV, "resourcetype"): [element(tag(DAV, "collection"))],
                tag(DAV, "displayname"): target.user, tag(DAV, "owner"): [href(principal_path(target.user))],
                tag(DAV, "current-user-privilege-set"): _privileges("owner")}
    if target.level == COLLECTION:
        return {**common, **_collection(resource.collection), **resource.extra}
    if target.level == ITEM:
        return _item(resource.item, target.kind)
    return common


def _principal(user: str) -> dict[str, Value]:
    return {
        tag(DAV, "resourcetype"): [element(tag(DAV, "collection")), element(tag(DAV, "principal"))],
        tag(DAV, "displayname"): user,
        tag(DAV, "principal-URL"): [href(principal_path(user))],
        tag(CALDAV, "calendar-home-set"): [href(home_path(user, CALENDAR))],
        tag(CARDDAV, "addressbook-home-set"): [href(home_path(user, "addressbook"))],
        # hearth has no delegation: nobody made this user their delegate (CalendarServer's calendar-proxy
        # groups, which Apple Calendar asks for at every start).
        tag(CALSERVER, "calendar-proxy-read-for"): [],
        tag(CALSERVER, "calendar-proxy-write-for"): [],
    }


def _collection(collection: Collection) -> dict[str, Value]:
    calendar = collection.kind == CALENDAR
    namespace = CALDAV if calendar else CARDDAV
    values: dict[str, Value] = {
        tag(DAV, "resourcetype"): [element(tag(DAV, "collection")), kind_element(collection.kind)],
        tag(DAV, "owner"): [href(principal_path(collection.owner))],
        tag(DAV, "current-user-privilege-set"): _privileges(collection.access),
        tag(DAV, "supported-report-set"): supported_reports(REPORTS[collection.kind]),
        tag(DAV, "sync-token"): collection.sync_token,
        tag(CALSERVER, "getctag"): collection.ctag,
        tag(namespace, "max-resource-size"): str(MAX_RESOURCE_SIZE),
    }
    # draft-pot-webdav-resource-sharing's clients look for this; CalendarServer's are served in invites.py.
    if collection.access != "owner":
        values[tag(DAV, "share-access")] = [element(tag(DAV, collection.access))]
    if collection.access != "owner":  # the grantee's clients show whose it is
        values[tag(DAV, "displayname")] = f"{collection.displayname or collection.name} ({collection.owner})"
    elif collection.displayname is not None:
        values[tag(DAV, "displayname")] = collection.displayname
    description = tag(CALDAV, "calendar-description") if calendar else tag(CARDDAV, "addressbook-description")
    if collection.description is not None:
        values[description] = collection.description
    if calendar:
        values[tag(CALDAV, "supported-calendar-component-set")] = [_comp(name) for name in collection.components]
        values[tag(CALDAV, "supported-calendar-data")] = [_data_type(tag(CALDAV, "calendar-data"), "text/calendar",
                                                                     "2.0")]
        # How many instances of one object expand and free-busy will produce in a range (RFC 4791 §5.2.8).
        values[tag(CALDAV, "max-instances")] = str(MAX_INSTANCES)
        if collection.color is not None:
            values[tag(APPLE, "calendar-color")] = collection.color
        if collection.timezone is not None:
            values[tag(CALDAV, "calendar-timezone")] = collection.timezone
    else:
        values[tag(CARDDAV, "supported-address-data")] = [
            _data_type(tag(CARDDAV, "address-data-type"), "text/vcard", version) for version in ("3.0", "4.0")]
    return values


def supported_reports(reports) -> list[ET.Element]:
    """The DAV:supported-report-set value (RFC 3253 §3.1.5) naming these (namespace, name) reports."""
    return [element(tag(DAV, "supported-report"), children=[element(tag(DAV, "report"), children=[
        element(tag(ns, name))])]) for ns, name in reports]


def kind_element(kind: str) -> ET.Element:
    """What a collection's resourcetype says it is besides DAV:collection."""
    return element(tag(CALDAV, "calendar") if kind == CALENDAR else tag(CARDDAV, "addressbook"))


def _item(item: Item, kind: str) -> dict[str, Value]:
    values: dict[str, Value] = {
        tag(DAV, "resourcetype"): [], tag(DAV, "getetag"): item.etag,
        tag(DAV, "getcontenttype"): CONTENT_TYPES[kind], tag(DAV, "getcontentlength"): str(item.size)}
    if item.schedule_tag is not None:  # RFC 6638 §3.3: what an attendee's client sends If-Schedule-Tag-Match with
        values[tag(CALDAV, "schedule-tag")] = item.schedule_tag
    return values


def _comp(name: str) -> ET.Element:
    node = element(tag(CALDAV, "comp"))
    node.set("name", name)
    return node


def _data_type(clark: str, content_type: str, version: str) -> ET.Element:
    node = element(clark)
    node.set("content-type", content_type)
    node.set("version", version)
    return node


def _privileges(access: str) -> list[ET.Element]:
    return [element(tag(DAV, "privilege"), children=[element(tag(DAV, name))]) for name in PRIVILEGES[access]]


def render(clark: str, value: Value) -> ET.Element:
    """The property element carrying `value`."""
    if isinstance(value, str):
        return element(clark, value)
    return element(clark, children=value)
