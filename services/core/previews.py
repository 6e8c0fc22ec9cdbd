"""Thumbnails of image files (JPEG, PNG, GIF, WebP, HEIC): the sizes asked for, and how one is drawn.

The Nextcloud apps ask for a box (x × y pixels) and how to fit the picture in it, the way Nextcloud's
own preview generator does: `a=1` keeps the aspect ratio, and then mode `fill` (the default) fits the
picture inside the box while `cover` makes it cover the box (the app crops the overflow itself, as
Android's ThumbnailUtils.extractThumbnail and the iOS app do); `a=0` crops to exactly x × y. A
picture is never enlarged, and a box is clamped to MAX_SIDE.

Drawing is CPU work on untrusted bytes: it runs in a worker thread (preview_cache.Previews), never on
the event loop; a picture whose header declares more pixels than the configured limit is refused
before any pixel is decoded (a decompression bomb costs nothing), and a JPEG is decoded at the
smallest scale that still fills the box (Pillow's draft mode), so a 50-megapixel photo is never
held whole in memory for a 256-pixel thumbnail. The EXIF orientation is applied, so a photo taken
with the phone on its side shows upright; the thumbnail carries no metadata (no GPS position).
"""
from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from .errors import BadRequest, NotFound
from .user_content import content_type

register_heif_opener()

RENDERABLE = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif"})
MAX_SIDE = 2048  # the apps ask for at most 1024 (iOS's default); Nextcloud's own limit is 4096
DEFAULT_SIDE = 32  # what Nextcloud assumes when x or y is missing
MODES = ("fill", "cover")
JPEG_QUALITY = 85


class NoPreview(NotFound):
    """404: this file has no thumbnail (not a picture, unreadable, or over the pixel limit); the apps
    then show the file type's icon."""


def can_preview(name: str) -> bool:
    """Whether a file's type is one hearth draws thumbnails of (nc:has-preview, has_preview)."""
    return content_type(name) in RENDERABLE


@dataclass(frozen=True)
class PreviewSize:
    """The box a thumbnail must fit, and how: `keep_aspect` (a=1) and `cover` (mode=cover)."""

    width: int
    height: int
    keep_aspect: bool = True
    cover: bool = False

    @property
    def token(self) -> str:
        """Names the size in a cache key: two requests that draw the same picture share it."""
        return f"{self.width}x{self.height}-{'a' if self.keep_aspect else 'c'}-{'cover' if self.cover else 'fill'}"

    def target(self, width: int, height: int) -> tuple[int, int, bool]:
        """(width, height, crop) of the thumbnail of a width × height picture: never larger than it."""
        if not self.keep_aspect:
            return min(self.width, width), min(self.height, height), True
        scale_w, scale_h = self.width / width, self.height / height
        scale = min(1.0, max(scale_w, scale_h) if self.cover else min(scale_w, scale_h))
        return max(1, round(width * scale)), max(1, round(height * scale)), False


def _side(value: str | None, name: str) -> int:
    if value is None or value == "":
        return DEFAULT_SIDE
    try:
        side = int(value)
    except ValueError:
        raise BadRequest(f"{name} must be a number of pixels, not {value[:20]!r}") from None
    if side == -1:  # Nextcloud's "as large as allowed"
        return MAX_SIDE
    if side < 1:
        raise BadRequest(f"{name} must be at least 1 pixel (or -1: as large as allowed)")
    return min(side, MAX_SIDE)


def parse_size(query) -> PreviewSize:
    """The box from a request's x, y, a and mode parameters (Nextcloud's names); BadRequest if malformed."""
    aspect = query.get("a", "0").lower()
    if aspect not in ("0", "1", "true", "false", ""):
        raise BadRequest(f"a must be 0 or 1, not {aspect[:20]!r}")
    mode = query.get("mode", "fill") or "fill"
    if mode not in MODES:
        raise BadRequest(f"mode must be one of {', '.join(MODES)}, not {mode[:20]!r}")
    return PreviewSize(_side(query.get("x"), "x"), _side(query.get("y"), "y"),
                       keep_aspect=aspect in ("1", "true"), cover=mode == "cover")


def render(source: Path, size: PreviewSize, max_pixels: int) -> bytes:
    """The thumbnail of the picture in `source`: PNG when it has transparency, JPEG otherwise.
    NoPreview when it is not a picture Pillow reads, or declares more than `max_pixels` pixels."""
    try:
        with Image.open(source) as image:
            if image.width * image.height > max_pixels:
                raise NoPreview(f"the picture has {image.width} × {image.height} pixels, more than the "
                                f"{max_pixels:,} a thumbnail is drawn from ([files] preview_max_megapixels)")
            if image.format == "JPEG":
                side = max(size.width, size.height)  # either orientation still fills the box
                image.draft("RGB", (side, side))
            ImageOps.exif_transpose(image, in_place=True)  # in place: no second copy of a big picture
            return _encode(_fit(_plain(image), size))
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as error:
        raise NoPreview(f"the file is not a picture hearth can read ({type(error).__name__})") from None


def _plain(image: Image.Image) -> Image.Image:
    """RGBA when the picture has transparency, RGB otherwise: what resizing and encoding need."""
    transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    wanted = "RGBA" if transparent else "RGB"
    return image if image.mode == wanted else image.convert(wanted)


def _fit(image: Image.Image, size: PreviewSize) -> Image.Image:
    width, height, crop = size.target(image.width, image.height)
    if crop:
        return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS)
    return image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encode(image: Image.Image) -> bytes:
    out = BytesIO()
    if image.mode == "RGBA":
        image.save(out, "PNG", optimize=True)
    else:
        image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def media_type(thumbnail: bytes) -> str:
    """The type of a thumbnail render made: PNG or JPEG, told by its first bytes."""
    return "image/png" if thumbnail.startswith(b"\x89PNG") else "image/jpeg"
