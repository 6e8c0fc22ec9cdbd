"""A file's chunks read in order with the next few already on their way: what a download from S3 needs.

Each read from an object store is a round trip; reading a file's chunks one
after the other leaves the store idle while each chunk is written to the
client, and the client idle while the next one is fetched. `chunks_in_order`
keeps reads in flight on worker threads and yields them in order. Two limits
bound them: `store.read_ahead` reads (a round trip costs the same for 20 KiB as
for 1 MiB, so a file of small chunks wants many) and `store.read_ahead_bytes`
of chunks read or being read ahead of the one being written (so 4 MiB chunks
are never held sixteen at a time). The sizes come from the journal, which
knows every chunk's length before it is read. A local directory reads ahead by
one: a disk read costs no round trip.

The reads run on a pool of their own: asyncio's default pool has os.cpu_count() + 4
threads, six on a two-core server, which would cap a download's sixteen reads at
six and leave nothing for the rest of the daemon's worker-thread hops meanwhile.
"""
from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncIterator, Iterable

from .chunks import BlobStore

READERS = ThreadPoolExecutor(32, thread_name_prefix="read-ahead")  # reads in flight, all downloads together


async def chunks_in_order(store: BlobStore, chunks: Iterable[tuple[str, int]]) -> AsyncIterator[bytes]:
    """Each chunk's bytes, in the order of `chunks` ((id, length) pairs). A chunk that cannot be read
    raises (NotFound, OSError, StoreUnavailable) when its turn comes, so everything before it has been
    yielded. One chunk is always read, whatever its length: a budget smaller than a chunk still serves it."""
    loop = asyncio.get_running_loop()
    pending: deque[tuple[asyncio.Future, int]] = deque()
    held = 0  # bytes of the chunks in `pending`
    waiting = iter(chunks)
    upcoming = next(waiting, None)
    try:
        while True:
            while upcoming is not None and (not pending or (
                    len(pending) < store.read_ahead and held + upcoming[1] <= store.read_ahead_bytes)):
                cid, length = upcoming
                pending.append((loop.run_in_executor(READERS, store.get, cid), length))
                held += length
                upcoming = next(waiting, None)
            if not pending:
                return
            future, length = pending.popleft()
            held -= length
            yield await future
    finally:
        for future, _ in pending:  # the download stopped: reads still running finish on their threads, unread
            future.cancel()
