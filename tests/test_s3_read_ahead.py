"""A download from S3 keeps many small chunks in flight, and never more than the byte budget of big ones.

A real sync daemon with its chunks in a real SeaweedFS bucket, reached through a loopback relay that
forwards every request unchanged and counts the chunk GETs it is relaying at once (and their bytes):
a fetch of many small chunks overlaps more than four round trips, and a fetch of big chunks never
has more than `BlobStore.read_ahead_bytes` of them on their way (services/core/tree/read_ahead.py).
"""
from __future__ import annotations

import asyncio
import os
import threading

import aiohttp
import pytest
from aiohttp import web

from services.core.tree import chunk_id
from tests.daemons import serving
from tests.test_sync_server import SyncDaemon, commit, folder, frame, unframe

BUDGET = 16 * 1024 * 1024  # bytes of chunks a download may have on their way
ROUND_TRIP = 0.2  # seconds each chunk GET is held at the relay, so that reads in flight overlap for sure
HOP_BY_HOP = {"connection", "transfer-encoding", "content-length", "keep-alive"}


class CountingRelay:
    """An HTTP relay in front of the S3 gateway. Requests go on as they came, Host header included (the
    signature covers it); GETs of the chunks in `sizes` are counted while they are being relayed."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.sizes: dict[str, int] = {}
        self.in_flight: list[int] = []
        self.most = self.most_bytes = 0
        self._lock = threading.Lock()

    def start(self) -> "CountingRelay":
        bound = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            self.loop.run_until_complete(self._serve())
            bound.set()
            self.loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        assert bound.wait(30), "the relay did not bind"
        return self

    async def _serve(self) -> None:
        self.session = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._relay)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.endpoint = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    def reset(self, sizes: dict[str, int]) -> None:
        with self._lock:
            self.sizes, self.most, self.most_bytes = dict(sizes), 0, 0

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        size = self.sizes.get(request.path.rpartition("/")[2]) if request.method == "GET" else None
        if size is not None:
            with self._lock:
                self.in_flight.append(size)
                self.most = max(self.most, len(self.in_flight))
                self.most_bytes = max(self.most_bytes, sum(self.in_flight))
        try:
            if size is not None:
                await asyncio.sleep(ROUND_TRIP)
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            async with self.session.request(request.method, self.upstream + request.raw_path, headers=headers,
                                            data=body or None, allow_redirects=False) as answer:
                data = await answer.read()
                response = web.StreamResponse(status=answer.status, headers={
                    k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP})
                if answer.content_length is not None:
                    response.content_length = answer.content_length
                await response.prepare(request)
                if data:
                    await response.write(data)
                await response.write_eof()
                return response
        finally:
            if size is not None:
                with self._lock:
                    self.in_flight.remove(size)

    def stop(self) -> None:
        async def close() -> None:
            await self.session.close()
            await self.runner.cleanup()
        asyncio.run_coroutine_threadsafe(close(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture(scope="module")
def relayed_sync(tmp_path_factory, seaweed):
    relay = CountingRelay(seaweed.endpoint).start()
    daemon = SyncDaemon(tmp_path_factory.mktemp("s3readahead"))
    daemon.bucket = seaweed.bucket_for(daemon.home)
    config = daemon.config.read_text()
    if "[storage]" not in config:
        config += seaweed.storage_toml(daemon.bucket)
    daemon.config.write_text(config.replace(seaweed.endpoint, relay.endpoint))
    daemon.env.update(seaweed.environ())
    try:
        with serving(daemon, "alice"):
            yield daemon, relay
    finally:
        relay.stop()


def fetched(sync: SyncDaemon, relay: CountingRelay, name: str, blobs: list[bytes]) -> list[bytes]:
    """Upload `blobs` as one file's chunks, then download them in one fetch with the relay counting."""
    fid = folder(sync, "alice", name)
    status, body = sync.request("POST", "/sync/v1/chunks/batch", b"".join(frame(b) for b in blobs),
                                user="alice", timeout=60)
    assert status == 201, body
    chunks = [[chunk_id(b), len(b)] for b in blobs]
    status, body = commit(sync, "alice", fid, f"{name}.bin", chunks)
    assert status == 200, body
    relay.reset(dict(chunks))
    status, body = sync.request("POST", f"/sync/v1/folders/{fid}/chunks/fetch", {"ids": [c for c, _ in chunks]},
                                user="alice", timeout=60)
    assert status == 200, body
    return [data for _, data in unframe(body)]


def test_a_download_of_small_chunks_keeps_more_than_four_reads_in_flight(relayed_sync):
    sync, relay = relayed_sync
    blobs = [os.urandom(20 * 1024) for _ in range(48)]  # a folder of small files' worth of chunks
    assert fetched(sync, relay, "small", blobs) == blobs
    assert 4 < relay.most <= 16, relay.most


def test_a_download_of_big_chunks_never_has_more_than_the_byte_budget_in_flight(relayed_sync):
    sync, relay = relayed_sync
    blobs = [os.urandom(5 * 1024 * 1024) for _ in range(6)]  # four at once would be 20 MiB
    assert fetched(sync, relay, "big", blobs) == blobs
    assert 2 <= relay.most and relay.most_bytes <= BUDGET, (relay.most, relay.most_bytes)
