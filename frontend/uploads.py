"""What the studio can tell about an uploaded file before it is sent: is it a picture or a recording at all.

The server decides for good (its allow-listed decoder); this only catches a file that is plainly not what it
claims to be, so the field can say so under itself instead of the page failing when it tries to preview it.
"""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

IMAGE_FORMATS = {"PNG", "JPEG", "WEBP"}  # what the server's decoder accepts for photos
MAX_PHOTO_MB = 20


def human_size(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB" if n >= 1024 else f"{n} B"


def image_problem(data: bytes) -> tuple[str | None, str]:
    """(problem or None, a short description such as '512×512 · 200 KB')."""
    if len(data) > MAX_PHOTO_MB * 2**20:
        return f"it is larger than {MAX_PHOTO_MB} MB", human_size(len(data))
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            img.load()  # a truncated file passes verify() but fails here, as it would in the preview
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return "it is not a picture this studio can read (PNG, JPEG or WebP)", human_size(len(data))
    if fmt not in IMAGE_FORMATS:
        return f"it is a {fmt} picture; use PNG, JPEG or WebP", human_size(len(data))
    return None, f"{width}×{height} · {human_size(len(data))}"


def audio_problem(data: bytes) -> tuple[str | None, str]:
    """(problem or None, a short description such as '3.2 s · 80 KB'), read with PyAV like the server."""
    import av

    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            streams = container.streams.audio
            if not streams:
                return "it has no sound in it", human_size(len(data))
            seconds = float(container.duration / av.time_base) if container.duration else None
            # Decoding one frame catches a file whose header is fine but whose sound is not.
            next(container.decode(streams[0]), None)
    except Exception:  # noqa: BLE001 - anything FFmpeg cannot make sense of is the same answer to a person
        return "it is not a recording this studio can read (WAV, MP3, M4A, OGG, FLAC or WebM)", human_size(len(data))
    return None, (f"{seconds:.1f} s · " if seconds else "") + human_size(len(data))
