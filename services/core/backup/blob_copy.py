"""Copying chunks between stores, verifying each one's BLAKE3 on the way.

A chunk is named by the hash of its bytes, so a copy that was killed midway
is resumed by copying what the target still lacks: whatever is there was
verified and renamed into place whole. Chunks are written in batches with one
file-system flush each (BlobStore.stage/publish) rather than one per chunk.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from ..errors import BadRequest, CommandError, NotFound
from ..tree import BlobStore
from ..tree.chunks import chunk_id

BATCH_BYTES = 64 << 20
BATCH_CHUNKS = 256


@dataclass
class CopyReport:
    copied: int = 0
    copied_bytes: int = 0
    present: int = 0
    missing: list[str] | None = None
    repaired: int = 0  # with verify_present: chunks in the target whose bytes had rotted, copied again


def copy_chunks(source: BlobStore, target: BlobStore, ids: Iterable[str], *, source_name: str,
                progress: Callable[[int], None] = lambda n: None, allow_missing: bool = False,
                verify_present: bool = False) -> CopyReport:
    """Copy every chunk of `ids` that `target` lacks from `source`; `progress(n)` after each chunk.

    A chunk whose bytes do not hash to its name is a CommandError naming it (nothing damaged is ever
    written to the target). One absent from `source` is a CommandError too, unless `allow_missing`:
    then the report lists it. With `verify_present`, chunks already in the target are re-hashed too,
    and one that rotted there is replaced."""
    wanted = sorted(set(ids))
    present = target.has_many(wanted)
    rotten = {cid for cid in present if verify_present and chunk_id(target.get(cid)) != cid}
    for cid in rotten:
        target.delete(cid)
    present -= rotten
    report = CopyReport(present=len(present), missing=[], repaired=len(rotten))
    batch, batch_bytes = [], 0
    try:
        for cid in wanted:
            if cid in present:
                progress(1)
                continue
            try:
                data = source.get(cid)
            except NotFound:
                if not allow_missing:
                    raise CommandError(f"chunk {cid} is missing from {source_name}") from None
                report.missing.append(cid)
                progress(1)
                continue
            try:
                batch.append(target.stage(cid, data))
            except BadRequest as error:
                raise CommandError(f"{source_name}: {error.reason}: that chunk is damaged "
                                   "(`hearth sync check --verify` lists every damaged chunk)") from None
            batch_bytes += len(data)
            report.copied += 1
            report.copied_bytes += len(data)
            progress(1)
            if batch_bytes >= BATCH_BYTES or len(batch) >= BATCH_CHUNKS:
                target.publish(batch)
                batch, batch_bytes = [], 0
        target.publish(batch)
    except BaseException:
        target.discard(batch)
        raise
    return report
