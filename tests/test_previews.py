"""core.previews and core.preview_cache on a real chunk store: the formats drawn, the pixel and byte
limits, and the cache's budget (least recently used thumbnails go first)."""
from __future__ import annotations

import asyncio
import os
from io import BytesIO

import pytest
from PIL import Image

from services.core.errors import BadRequest
from services.core.preview_cache import Previews
from services.core.previews import NoPreview, PreviewSize, parse_size
from services.core.tree import ChunkStore
from services.core.tree.chunks import chunk_id


def encoded(image: Image.Image, kind: str, **options) -> bytes:
    out = BytesIO()
    image.save(out, kind, **options)
    return out.getvalue()


def stored(store: ChunkStore, data: bytes, piece: int = 1000) -> list[tuple[str, int]]:
    """The file's chunk list, the bytes cut into pieces as the journal keeps them."""
    chunks = []
    for start in range(0, len(data), piece):
        part = data[start:start + piece]
        store.put(chunk_id(part), part)
        chunks.append((chunk_id(part), len(part)))
    return chunks


@pytest.fixture
def previews(tmp_path):
    made = Previews(tmp_path / "previews", ChunkStore(tmp_path / "blobs"), max_pixels=4_000_000, cache_bytes=0)
    yield made
    made.close()


def draw(previews: Previews, data: bytes, size: PreviewSize) -> Image.Image:
    thumbnail = asyncio.run(previews.thumbnail(stored(previews.store, data), size))
    image = Image.open(BytesIO(thumbnail))
    image.load()
    return image


@pytest.mark.parametrize("kind, mode, expected", [
    ("JPEG", "RGB", "JPEG"), ("PNG", "RGBA", "PNG"), ("PNG", "P", "JPEG"), ("GIF", "P", "JPEG"),
    ("WEBP", "RGB", "JPEG"), ("WEBP", "RGBA", "PNG"), ("HEIF", "RGB", "JPEG"),
])
def test_each_format_is_drawn_fitted_into_the_box(previews, kind, mode, expected):
    source = encoded(Image.new(mode, (800, 400)), kind)
    image = draw(previews, source, PreviewSize(100, 100))
    assert image.format == expected and image.size == (100, 50)
    assert not image.info.get("exif")  # no metadata (a GPS position) travels into the thumbnail


def test_over_the_pixel_limit_or_the_byte_bound_there_is_no_thumbnail(previews, tmp_path):
    bomb = encoded(Image.new("1", (4000, 1001)), "PNG")  # 4,004,000 pixels in a few hundred bytes
    assert len(bomb) < 10_000
    with pytest.raises(NoPreview, match="preview_max_megapixels"):
        draw(previews, bomb, PreviewSize(64, 64))
    # a file larger than any picture within the limit is refused before it is assembled
    with pytest.raises(NoPreview, match="larger than any picture"):
        asyncio.run(previews.thumbnail(stored(previews.store, b"x" * 1000) * 40_000, PreviewSize(64, 64)))
    assert list((tmp_path / "previews" / "tmp").iterdir()) == []  # no source left behind


def test_the_cache_keeps_to_its_budget_dropping_the_least_recently_used(tmp_path):
    previews = Previews(tmp_path / "previews", ChunkStore(tmp_path / "blobs"), max_pixels=4_000_000,
                        cache_bytes=60_000)
    try:
        noise = [encoded(Image.frombytes("RGB", (200, 200), os.urandom(120_000)), "PNG") for _ in range(8)]
        kept = []
        for number, source in enumerate(noise):
            chunks = stored(previews.store, source, piece=50_000)
            asyncio.run(previews.thumbnail(chunks, PreviewSize(200, 200)))
            kept.append(previews.path_of(chunks, PreviewSize(200, 200)))
            os.utime(kept[-1], (number, number))  # in the order they were used
        sizes = [path.stat().st_size for path in kept if path.exists()]
        assert sum(sizes) <= 60_000
        assert kept[-1].exists() and not kept[0].exists()  # the newest stays, the oldest went first
    finally:
        previews.close()


@pytest.mark.parametrize("query, reason", [
    ({"x": "big"}, "x must be a number"), ({"y": "0"}, "y must be at least 1"), ({"a": "yes"}, "a must be 0 or 1"),
    ({"mode": "stretch"}, "mode must be one of"),
])
def test_malformed_sizes_are_refused_with_the_reason(query, reason):
    with pytest.raises(BadRequest, match=reason):
        parse_size(query)


def test_sizes_default_clamp_and_keep_their_meaning():
    assert parse_size({}) == PreviewSize(32, 32, keep_aspect=False)
    assert parse_size({"x": "99999", "y": "-1", "a": "1", "mode": "cover"}) == PreviewSize(2048, 2048, True, True)
    assert PreviewSize(100, 100, cover=True).target(400, 200) == (200, 100, False)
    assert PreviewSize(100, 100).target(400, 200) == (100, 50, False)
    assert PreviewSize(100, 100).target(40, 20) == (40, 20, False)  # never enlarged
    assert PreviewSize(100, 60, keep_aspect=False).target(400, 200) == (100, 60, True)


def test_sources_left_by_a_stopped_daemon_go_and_those_of_a_running_one_stay(tmp_path):
    scratch = tmp_path / "previews" / "tmp"
    scratch.mkdir(parents=True)
    (scratch / "left").write_bytes(b"half a photo")
    os.utime(scratch / "left", (1, 1))
    (scratch / "drawing").write_bytes(b"a photo another daemon is drawing from")
    Previews(tmp_path / "previews", ChunkStore(tmp_path / "blobs"), max_pixels=1, cache_bytes=0).close()
    assert sorted(path.name for path in scratch.iterdir()) == ["drawing"]
