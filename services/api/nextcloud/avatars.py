"""GET /index.php/avatar/USER/SIZE (the Android and iOS apps) and /remote.php/dav/avatars/USER/SIZE.png
(the desktop app, desktop:src/libsync/networkjobs.cpp AvatarJob, for servers from 10 on): the picture
the apps show for the account.

hearth keeps no pictures of people, so the avatar is a plain square in a colour
drawn from the user name: the same user always gets the same colour, and two
accounts on one phone are told apart at a glance. Only the logged-in user's
own avatar is served; any other is 404, which every app takes as "no avatar".
"""
from __future__ import annotations

import hashlib
import struct
import zlib

from aiohttp import web

from services.core.auth import require_user
from services.core.errors import BadRequest, NotFound

SIZES = range(16, 1025)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def square_png(size: int, rgb: bytes) -> bytes:
    """A size×size PNG of one colour (8-bit RGB, no filter)."""
    rows = (b"\x00" + rgb * size) * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows, 9)) + \
        _chunk(b"IEND", b"")


def colour_of(user: str) -> bytes:
    """A mid-tone colour from the name, dark enough for white text in the apps' headers."""
    digest = hashlib.sha256(user.encode()).digest()
    return bytes(64 + value % 128 for value in digest[:3])


async def avatar(request: web.Request) -> web.Response:
    identity = await require_user(request)
    if request.match_info["user"] != identity.user:
        raise NotFound("hearth shows only your own avatar")
    try:
        size = int(request.match_info["size"])
    except ValueError:
        raise BadRequest("the avatar size must be a number of pixels") from None
    if size not in SIZES:
        raise BadRequest(f"the avatar size must be from {SIZES.start} to {SIZES.stop - 1} pixels")
    etag = '"' + hashlib.sha256(f"{identity.user}:{size}".encode()).hexdigest()[:16] + '"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=square_png(size, colour_of(identity.user)), content_type="image/png",
                        headers={"ETag": etag, "Cache-Control": "private, max-age=86400"})
