"""The chunk frame format of the batch endpoints (POST /sync/v1/chunks/batch and
POST /sync/v1/folders/{id}/chunks/fetch): a body is zero or more frames, each

    32 bytes   the chunk id as raw BLAKE3 digest bytes
     4 bytes   N, the data length, big-endian unsigned
     N bytes   the chunk's data

so many small chunks travel in one request, and a reader needs one chunk in
memory at a time.
"""
from __future__ import annotations

import struct

HEADER = struct.Struct(">32sI")


def frame_header(chunk_id: str, length: int) -> bytes:
    return HEADER.pack(bytes.fromhex(chunk_id), length)


def parse_header(header: bytes) -> tuple[str, int]:
    """(chunk id, data length) of a frame header of HEADER.size bytes."""
    digest, length = HEADER.unpack(header)
    return digest.hex(), length
