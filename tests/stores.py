"""The blob store of a test's home as the daemons see it (var/blobs, or a bucket when the session runs with
HEARTH_TEST_BLOBS=s3), and what tests do to it behind hearth's back.

Tests look at chunks through the store, never through var/blobs, so they hold on either backend.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable

from services.core.blobs import open_blob_store
from services.core.config import load_config
from services.core.tree import BlobStore, ChunkStore
from tests.installation import clean_environ


def home_store(config: Path) -> BlobStore:
    """The store the hearth.toml at `config` names, built by the one factory every daemon and command uses."""
    return open_blob_store(load_config(config, environ={}), clean_environ())


def backend(store: BlobStore) -> BlobStore:
    """The store itself under the factory's migration-following wrapper."""
    return getattr(store, "home", store)


def rot(store: BlobStore, chunk_id: str, data: bytes) -> None:
    """Replace the stored bytes of `chunk_id` with `data`, as a failing disk or a bad copy would: the store's
    own put refuses bytes that do not match their id."""
    real = backend(store)
    if isinstance(real, ChunkStore):
        path = real.path(chunk_id)
        path.chmod(0o600)
        path.write_bytes(data)
        return
    import obstore

    from services.core.tree.s3store import s3_client

    obstore.put(s3_client(real.location), real.key(chunk_id), data)


def wait_until_leases_passed(store: BlobStore, chunk_ids: Iterable[str], timeout: float = 10) -> None:
    """Until every chunk's upload lease lies in the past. An object store's runs to the next whole second
    (LastModified has no finer grain), so a deletion that begins right after a write would spare it as an
    upload in flight; a real deletion comes long after the last upload."""
    ids = list(chunk_ids)
    deadline = time.monotonic() + timeout
    while max((store.written_at(cid) or 0.0 for cid in ids), default=0.0) >= time.time():
        assert time.monotonic() < deadline, "leases still in the future"
        time.sleep(0.05)
