"""The one DAV client of the benchmark: the same aiohttp code, requests and checks for every server.

One `aiohttp.ClientSession` per server (keep-alive, at most CONCURRENCY
connections). Each call returns what the benchmark checks (statuses, hrefs,
UIDs, sync tokens); a status a DAV client would not accept raises `DavFailure`
with the server's answer, so one unsupported request costs one metric, not the run.
"""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import unquote

import aiohttp
from defusedxml import ElementTree

from tests.bench.dav_data import Item

CONCURRENCY = 8
D, C, CARD = "DAV:", "urn:ietf:params:xml:ns:caldav", "urn:ietf:params:xml:ns:carddav"
XML = {"Content-Type": 'application/xml; charset="utf-8"'}
CONTENT_TYPES = {".ics": "text/calendar; charset=utf-8", ".vcf": "text/vcard; charset=utf-8"}

MKCALENDAR = f'<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="{D}" xmlns:C="{C}"><D:set><D:prop>' \
             '<D:displayname>bench</D:displayname></D:prop></D:set></C:mkcalendar>'
MKADDRESSBOOK = f'<?xml version="1.0" encoding="utf-8"?><D:mkcol xmlns:D="{D}" xmlns:CR="{CARD}"><D:set><D:prop>' \
                '<D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype>' \
                '<D:displayname>bench contacts</D:displayname></D:prop></D:set></D:mkcol>'
PROPFIND_ITEMS = f'<?xml version="1.0" encoding="utf-8"?><D:propfind xmlns:D="{D}"><D:prop>' \
                 '<D:getetag/><D:getcontenttype/><D:resourcetype/></D:prop></D:propfind>'
SYNC = f'<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="{D}"><D:sync-token>%s</D:sync-token>' \
       '<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>'


class DavFailure(Exception):
    """A server answered a request with something a DAV client could not use."""


@dataclass
class Multistatus:
    """A 207 body: per href, the status of its getetag/data propstat (or of the response); the sync-token."""

    statuses: dict[str, int] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    sync_token: str = ""

    def uids(self, collection: str, status: int = 200) -> set[str]:
        """UIDs of the items (not the collection itself) answered with `status`."""
        return {uid_of(href) for href, code in self.statuses.items()
                if code == status and unquote(href).rstrip("/") != unquote(collection).rstrip("/")}


def uid_of(href: str) -> str:
    """The benchmark names items `<UID>.ics` / `<UID>.vcf`."""
    return unquote(href.rstrip("/").rsplit("/", 1)[-1]).rsplit(".", 1)[0]


def session(origin: str, auth: tuple[str, str] | None) -> aiohttp.ClientSession:
    headers = {"Authorization": aiohttp.encode_basic_auth(*auth)} if auth else None
    return aiohttp.ClientSession(origin, headers=headers,
                                 connector=aiohttp.TCPConnector(limit=CONCURRENCY),
                                 timeout=aiohttp.ClientTimeout(total=600))


async def call(client: aiohttp.ClientSession, method: str, path: str, body: bytes | str | None = None,
               headers: dict | None = None, expect: tuple[int, ...] = (200,)) -> bytes:
    """One request; its body, or DavFailure naming the status and the start of the answer."""
    async with client.request(method, path, data=body, headers=headers) as response:
        data = await response.read()
        if response.status not in expect:
            raise DavFailure(f"{method} {path} answered {response.status}: "
                             f"{data[:300].decode(errors='replace')!r}")
        return data


async def make_collections(client: aiohttp.ClientSession, calendar: str, addressbook: str) -> None:
    await call(client, "MKCALENDAR", calendar, MKCALENDAR, XML, expect=(201,))
    await call(client, "MKCOL", addressbook, MKADDRESSBOOK, XML, expect=(201,))


async def put_all(client: aiohttp.ClientSession, collection: str, items: list[Item]) -> tuple[float, Counter]:
    """PUT every item as new (If-None-Match: *) with CONCURRENCY requests in flight: (seconds, statuses)."""
    statuses: Counter = Counter()
    pending = iter(items)

    async def worker():
        for item in pending:
            headers = {"Content-Type": CONTENT_TYPES[item.name[-4:]], "If-None-Match": "*"}
            async with client.put(collection + item.name, data=item.body, headers=headers) as response:
                await response.read()
                statuses[response.status] += 1

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - began, statuses


async def put_one(client: aiohttp.ClientSession, collection: str, name: str, body: bytes) -> None:
    await call(client, "PUT", collection + name, body, {"Content-Type": CONTENT_TYPES[name[-4:]]},
               expect=(200, 201, 204))


async def get_one(client: aiohttp.ClientSession, path: str) -> tuple[float, bytes]:
    began = time.perf_counter()
    body = await call(client, "GET", path)
    return time.perf_counter() - began, body


async def propfind_items(client: aiohttp.ClientSession, collection: str) -> Multistatus:
    return parse(await call(client, "PROPFIND", collection, PROPFIND_ITEMS, {**XML, "Depth": "1"}, expect=(207,)))


async def calendar_query(client: aiohttp.ClientSession, collection: str, start: str | None,
                         end: str | None) -> Multistatus:
    """Events overlapping [start, end) (UTC, 'YYYYMMDDTHHMMSSZ'; None: that side open), asking only for
    getetag, as sync clients do."""
    bounds = "".join(f' {name}="{value}"' for name, value in (("start", start), ("end", end)) if value)
    body = f'<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="{D}" xmlns:C="{C}">' \
           '<D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR">' \
           f'<C:comp-filter name="VEVENT"><C:time-range{bounds}/></C:comp-filter>' \
           '</C:comp-filter></C:filter></C:calendar-query>'
    return parse(await call(client, "REPORT", collection, body, {**XML, "Depth": "1"}, expect=(207,)))


async def multiget(client: aiohttp.ClientSession, collection: str, names: list[str], card: bool) -> Multistatus:
    """calendar-multiget (or addressbook-multiget) of these items with getetag and their data."""
    ns, root, data = (CARD, "addressbook-multiget", "address-data") if card else (C, "calendar-multiget",
                                                                                "calendar-data")
    hrefs = "".join(f"<D:href>{collection}{name}</D:href>" for name in names)
    body = f'<?xml version="1.0" encoding="utf-8"?><X:{root} xmlns:D="{D}" xmlns:X="{ns}">' \
           f'<D:prop><D:getetag/><X:{data}/></D:prop>{hrefs}</X:{root}>'
    return parse(await call(client, "REPORT", collection, body, {**XML, "Depth": "1"}, expect=(207,)))


async def sync_collection(client: aiohttp.ClientSession, collection: str, token: str = "") -> Multistatus:
    return parse(await call(client, "REPORT", collection, SYNC % token, XML, expect=(207,)))


def parse(body: bytes) -> Multistatus:
    """The multistatus as the benchmark checks it: per href, 200 when its props came back, else the status."""
    root = ElementTree.fromstring(body)
    result = Multistatus(sync_token=(root.findtext(f"{{{D}}}sync-token") or "").strip())
    for response in root.iter(f"{{{D}}}response"):
        href = (response.findtext(f"{{{D}}}href") or "").strip()
        status = response.findtext(f"{{{D}}}status")
        codes = [_code(propstat.findtext(f"{{{D}}}status")) for propstat in response.iter(f"{{{D}}}propstat")]
        result.statuses[href] = 200 if 200 in codes else _code(status) if status else (codes or [0])[0]
        for data in (f"{{{C}}}calendar-data", f"{{{CARD}}}address-data"):
            text = response.findtext(f".//{data}")
            if text:
                result.data[href] = text
    return result


def _code(status_line: str | None) -> int:
    """'HTTP/1.1 404 Not Found' -> 404."""
    parts = (status_line or "").split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
