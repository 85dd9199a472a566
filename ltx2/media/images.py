"""The one image decoder for every upload path (reference photos, training photos).

* **Allow-list**: PNG, JPEG and WebP only. ``Image.open(fp, formats=…)`` never consults another Pillow plugin, so
  an EPS (which runs Ghostscript), PSD, SPIDER, TIFF or any other rarely used decoder never sees upload bytes.
* **Header before pixels**: the size comes from the header and is checked before a pixel is decoded.
* **Megapixel cap** (``AVATAR_MAX_IMAGE_MP``, 40 MP by default): PNG and WebP above it are refused (413). JPEGs
  above it — phones take 48 MP photos — are decoded at 1/2, 1/4 or 1/8 scale (libjpeg's DCT scaling, Pillow's
  ``draft``), which costs a fraction of a full decode, up to Pillow's own bomb limit (~89 MP).
* **Bounded pool**: decoding runs on a pool of ``AVATAR_DECODE_SLOTS`` (2) threads per process; further uploads
  queue, so parallel large uploads cannot exhaust memory (one 40 MP upload holds ~0.3 GB at its peak).
* Every failure is an :class:`ImageRejected` carrying an HTTP status (413/415/422) and a reason the caller puts
  next to the photo's name.

No torch here: the API process imports this module.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

PIL_FORMATS = ("PNG", "JPEG", "WEBP")
ACCEPTED = ("PNG", "JPEG", "WebP")
DEFAULT_MAX_PIXELS = 40_000_000
T = TypeVar("T")


class ImageRejected(ValueError):
    """An image that will not be decoded; ``status`` is the HTTP status, ``str()`` the reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Header:
    format: str
    width: int
    height: int
    scale: int  # 1, 2, 4 or 8: the JPEG is decoded at 1/scale of its size to fit the cap


def _max_pixels(limit: int | None) -> int:
    if limit is not None:
        return limit
    from ltx2.settings import get_settings

    return int(get_settings().max_image_mp * 1_000_000)


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    from ltx2.settings import get_settings

    return ThreadPoolExecutor(max_workers=get_settings().decode_slots, thread_name_prefix="decode")


def in_decode_pool(fn: Callable[..., T], *args) -> T:
    """Run ``fn`` (which decodes pixels) on the process's small decode pool and wait for it; uploads beyond the
    pool queue here. A fixed set of threads also keeps the allocator's per-thread arenas — which keep freed
    pixel buffers for reuse — to that many, so memory after a burst stays at pool size × one decode."""
    return _pool().submit(fn, *args).result()


def open_image(source: bytes | Path | IO[bytes]) -> Image.Image:
    """Identify an allowed image from its header; nothing is decoded yet."""
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else source
    try:
        return Image.open(fp, formats=PIL_FORMATS)
    except UnidentifiedImageError:
        raise ImageRejected(415, f"not an image this server accepts ({', '.join(ACCEPTED)})") from None
    except Image.DecompressionBombError as exc:
        raise ImageRejected(413, f"too many pixels ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - hostile headers can trip any parser bug
        raise ImageRejected(422, f"the image header could not be read ({exc.__class__.__name__})") from None


def check_header(img: Image.Image, *, max_pixels: int | None = None, min_side: int = 1) -> Header:
    """Size checks on the header alone; a JPEG over the cap gets the smallest DCT scale that fits."""
    cap = _max_pixels(max_pixels)
    width, height = img.size
    pixels = width * height
    pil_max = Image.MAX_IMAGE_PIXELS or pixels
    scale = 1
    if img.format == "JPEG":
        while width * height // (scale * scale) > cap and scale < 8:
            scale *= 2
    # Pillow's own threshold is a hard ceiling (past it, it warns or refuses on its own).
    if pixels // (scale * scale) > cap or pixels > pil_max:
        raise ImageRejected(
            413,
            f"too large ({width}x{height}, {pixels / 1e6:.1f} MP): the limit is "
            f"{cap / 1e6:g} MP (JPEGs up to {min(64 * cap, pil_max) / 1e6:.0f} MP are "
            "scaled down on decode)",
        )
    if min(width, height) // scale < min_side:
        raise ImageRejected(422, f"too small ({width}x{height}): both sides must be at least {min_side} pixels")
    return Header(img.format, width, height, scale)


def _flatten_to_rgb(img: Image.Image) -> Image.Image:
    """Whatever the mode, 8-bit sRGB without alpha (transparent areas on white, ICC profiles baked in)."""
    if img.mode.startswith("I"):
        # 16-bit greyscale: Pillow's convert() clips instead of scaling.
        arr = np.asarray(img).astype(np.uint32) >> 8
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        # Transparent pixels have arbitrary colour underneath; white is what the user saw in a viewer.
        rgba = img.convert("RGBA")
        backdrop = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        backdrop.alpha_composite(rgba)
        backdrop.info = dict(img.info)
        img = backdrop
    icc = img.info.get("icc_profile")
    if icc:
        # Metadata is dropped afterwards, so a non-sRGB profile (Display P3 on phones) goes into the pixels.
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            base = img.convert("RGB") if img.mode == "RGBA" else img
            return ImageCms.profileToProfile(base, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # noqa: BLE001 - a broken profile: keep the raw values
            pass
    return img.convert("RGB")


def decode_opened(img: Image.Image, header: Header) -> Image.Image:
    """Decode an image already opened and checked: first frame, EXIF-upright, RGB. Call it through
    :func:`in_decode_pool`, together with whatever else holds the full-size pixels."""
    try:
        if header.scale > 1:
            img.draft("RGB", (header.width // header.scale, header.height // header.scale))
        img.seek(0)  # animated WebP/PNG: the first frame is the photo
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # no extra copy of a 40 MP image when nothing turns
        return _flatten_to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise ImageRejected(413, f"too many pixels ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt data surfaces as many exception types
        raise ImageRejected(
            422, f"the {header.format} image could not be decoded ({exc.__class__.__name__}: {str(exc)[:120]})"
        ) from None


def decode(source: bytes | Path | IO[bytes], *, max_pixels: int | None = None, min_side: int = 1) -> Image.Image:
    """Open, check the header, decode on the decode pool: the one call for an upload's pixels."""
    with open_image(source) as img:
        header = check_header(img, max_pixels=max_pixels, min_side=min_side)
        return in_decode_pool(decode_opened, img, header)
