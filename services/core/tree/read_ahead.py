"""A file's chunks read in order with the next few already on their way: what a download from S3 needs.

Each read from an object store is a round trip; reading a file's chunks one
after the other leaves the store idle while each chunk is written to the
client, and the client idle while the next one is fetched. `chunks_in_order`
keeps up to `store.read_ahead` reads in flight on worker threads and yields
them in order, so at most that many chunks are held in memory. A local
directory reads ahead by one: a disk read costs no round trip.
"""
from __future__ import annotations

import asyncio
from collections import deque
from typing import AsyncIterator, Iterable

from .chunks import BlobStore


async def chunks_in_order(store: BlobStore, ids: Iterable[str]) -> AsyncIterator[bytes]:
    """Each chunk's bytes, in the order of `ids`. A chunk that cannot be read raises (NotFound, OSError,
    StoreUnavailable) when its turn comes, so everything before it has been yielded."""
    pending: deque[asyncio.Future] = deque()
    waiting = iter(ids)
    try:
        while True:
            while len(pending) < max(1, store.read_ahead):
                cid = next(waiting, None)
                if cid is None:
                    break
                pending.append(asyncio.ensure_future(asyncio.to_thread(store.get, cid)))
            if not pending:
                return
            yield await pending.popleft()
    finally:
        for future in pending:  # the download stopped: reads still running finish on their threads, unread
            future.cancel()
