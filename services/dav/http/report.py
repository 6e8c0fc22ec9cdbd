"""REPORT (RFC 3253 §3.6): the entry point, choosing the report its body names.

Every report is answered from one read transaction after `load` has checked
the read privilege; the report modules do the work: calendar-query and
free-busy-query (report_calendar), addressbook-query (report_card), the two
multigets (report_multiget), sync-collection (report_sync), expand-property (report_expand)
and the principal searches (report_principals), which apply anywhere. A report this
server does not know, or one that does not apply to the collection's kind,
is 403 DAV:supported-report.

The Depth header of calendar-query and addressbook-query is not consulted:
clients send 1 or nothing, and a query of a collection always means its members.
"""
from __future__ import annotations

from aiohttp import web

from services.core.errors import BadRequest

from ..errors import CALDAV, CARDDAV, DAV, Precondition
from ..store import ADDRESSBOOK, CALENDAR
from . import report_calendar, report_card, report_expand, report_multiget, report_principals, report_sync
from .paths import COLLECTION, HOME, ITEM, NOTIFICATIONS, PRINCIPAL, PRINCIPALS, ROOT, Target
from .xmlio import CALSERVER, read_xml, tag

ANYWHERE = (ROOT, PRINCIPALS, PRINCIPAL, HOME, COLLECTION, ITEM)

# Report element -> (handler, the collection kind it applies to (None: both), levels it may be asked at)
REPORTS = {
    tag(CALDAV, "calendar-query"): (report_calendar.calendar_query, CALENDAR, (COLLECTION, ITEM)),
    tag(CALDAV, "calendar-multiget"): (report_multiget.multiget, CALENDAR, (COLLECTION, ITEM)),
    tag(CALDAV, "free-busy-query"): (report_calendar.free_busy_query, CALENDAR, (COLLECTION,)),
    tag(CARDDAV, "addressbook-query"): (report_card.addressbook_query, ADDRESSBOOK, (COLLECTION, ITEM)),
    tag(CARDDAV, "addressbook-multiget"): (report_multiget.multiget, ADDRESSBOOK, (COLLECTION, ITEM)),
    tag(DAV, "sync-collection"): (report_sync.sync_collection, None, (COLLECTION, NOTIFICATIONS)),
    tag(DAV, "expand-property"): (report_expand.expand_property, None,
                                  (ROOT, PRINCIPALS, PRINCIPAL, HOME, COLLECTION, ITEM, NOTIFICATIONS)),
    tag(DAV, "principal-property-search"): (report_principals.principal_property_search, None, ANYWHERE),
    tag(DAV, "principal-search-property-set"): (report_principals.principal_search_property_set, None, ANYWHERE),
    tag(CALSERVER, "calendarserver-principal-search"): (report_principals.calendarserver_principal_search, None,
                                                        ANYWHERE),
}


async def report(request: web.Request, target: Target, user: str) -> web.StreamResponse:
    body = await read_xml(request)
    if body is None:
        raise BadRequest("REPORT needs an XML body naming the report")
    known = REPORTS.get(body.tag)
    if known is None:
        raise Precondition(DAV, "supported-report", f"no report {body.tag} here")
    handler, kind, levels = known
    if target.level not in levels or (kind is not None and target.kind != kind):
        raise Precondition(DAV, "supported-report", f"{body.tag} does not apply to {target.path}")
    return await handler(request, target, user, body)
