"""The sync client's side of /sync/v1: one aiohttp session, typed errors, batch transfers.

Two kinds of failure, because the daemon treats them differently:
- `Unreachable`: the server is away (connection refused or reset, timeout, 502/503/504).
  Nothing was decided; retry the same work later, with backoff.
- `RemoteError`: the server answered with a decision (401, 403, 404, 409, 400, 507, ...).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterable

import aiohttp

from services.sync.frames import HEADER, frame_header, parse_header

PREFIX = "/sync/v1"
UNREACHABLE_STATUSES = frozenset({502, 503, 504})
MAX_FETCH_IDS = 1000


class Unreachable(Exception):
    """The server could not be reached or is restarting; try again later."""


@dataclass
class RemoteError(Exception):
    status: int
    code: str
    reason: str
    body: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.reason} (HTTP {self.status})"


class Remote:
    """`async with Remote(url, user, secret) as remote:` — every call raises Unreachable or RemoteError."""

    def __init__(self, server: str, user: str, secret: str, *, timeout: float = 120.0):
        self.base = server.rstrip("/") + PREFIX
        self.auth = aiohttp.BasicAuth(user, secret)
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=timeout)
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Remote":
        connector = aiohttp.TCPConnector(limit=8)
        self.session = aiohttp.ClientSession(auth=self.auth, timeout=self.timeout, connector=connector,
                                             headers={"User-Agent": "hearth-sync"})
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    # --- folders and the journal ------------------------------------------

    async def folders(self) -> list[dict]:
        return await self._json("GET", "/folders")

    async def create_folder(self, name: str) -> dict:
        return await self._json("POST", "/folders", {"name": name})

    async def changes(self, folder: int, since: int, *, limit: int = 1000, wait: float = 0) -> dict:
        params = {"since": str(since), "limit": str(limit)}
        if wait:
            params["wait"] = str(wait)
        return await self._json("GET", f"/folders/{folder}/changes", params=params)

    async def commits(self, folder: int, items: list[dict]) -> list[dict]:
        return (await self._json("POST", f"/folders/{folder}/commits", {"commits": items}))["results"]

    async def deletes(self, folder: int, items: list[dict]) -> list[dict]:
        """Many deletes in one request (the commits endpoint's `deletes`), one result each, in order."""
        return (await self._json("POST", f"/folders/{folder}/commits", {"deletes": items}))["results"]

    async def rename(self, folder: int, src: str, dst: str, base: int | None, device: str) -> dict:
        return await self._json("POST", f"/folders/{folder}/rename", {
            "src": src, "dst": dst, "base_revision": base, "device": device})

    async def mkdir(self, folder: int, path: str, device: str) -> dict:
        return await self._json("POST", f"/folders/{folder}/mkdir", {"path": path, "device": device})

    async def versions(self, folder: int, path: str) -> list[dict]:
        """Every kept revision of `path`, newest first (delete markers included)."""
        return (await self._json("GET", f"/folders/{folder}/versions", params={"path": path}))["versions"]

    async def trash(self, folder: int) -> list[dict]:
        return (await self._json("GET", f"/folders/{folder}/trash"))["items"]

    async def restore(self, folder: int, path: str, revision: int, device: str) -> dict:
        return await self._json("POST", f"/folders/{folder}/restore", {
            "path": path, "revision_id": revision, "device": device})

    # --- chunks -------------------------------------------------------------

    async def missing(self, folder: int, ids: Iterable[str]) -> set[str]:
        """Which of `ids` the server lacks."""
        ids = list(dict.fromkeys(ids))
        missing: set[str] = set()
        for start in range(0, len(ids), 10_000):
            body = await self._json("POST", f"/folders/{folder}/chunks/have", {"ids": ids[start:start + 10_000]})
            missing.update(body["missing"])
        return missing

    async def upload(self, chunks: list[tuple[str, bytes]]) -> None:
        """Send these chunks in one batch request."""
        async def body() -> AsyncIterator[bytes]:
            for cid, data in chunks:
                yield frame_header(cid, len(data))
                yield data

        length = sum(HEADER.size + len(data) for _, data in chunks)
        await self._json("POST", "/chunks/batch", raw=body(), headers={
            "Content-Type": "application/octet-stream", "Content-Length": str(length)}, expect=(201,))

    async def fetch(self, folder: int, ids: list[str]) -> AsyncIterator[tuple[str, bytes]]:
        """The chunks `ids` (no duplicates, at most MAX_FETCH_IDS), in order, as they arrive."""
        try:
            async with self.session.post(f"{self.base}/folders/{folder}/chunks/fetch",
                                         json={"ids": ids}) as response:
                await self._check(response)
                for _ in ids:
                    cid, length = parse_header(await response.content.readexactly(HEADER.size))
                    yield cid, await response.content.readexactly(length)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.IncompleteReadError,
                TimeoutError) as error:
            raise Unreachable(_describe(error)) from None

    # --- plumbing -------------------------------------------------------------

    async def _json(self, method: str, path: str, body: Any = None, *, params=None, raw=None,
                    headers=None, expect=(200, 201)) -> Any:
        try:
            async with self.session.request(method, self.base + path, params=params, headers=headers,
                                            json=body if raw is None else None, data=raw) as response:
                await self._check(response, expect)
                return await response.json()
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as error:
            raise Unreachable(_describe(error)) from None

    async def _check(self, response: aiohttp.ClientResponse, expect=(200, 201)) -> None:
        if response.status in expect:
            return
        if response.status in UNREACHABLE_STATUSES:
            raise Unreachable(f"server answered {response.status} {response.reason}")
        try:
            body = await response.json(content_type=None)
        except (ValueError, aiohttp.ContentTypeError):
            body = {}
        if not isinstance(body, dict):
            body = {}
        raise RemoteError(response.status, str(body.get("error") or response.reason),
                          str(body.get("reason") or body.get("message") or response.reason), body)


def _describe(error: BaseException) -> str:
    text = str(error) or error.__class__.__name__
    return text if len(text) < 200 else text[:200] + "…"
