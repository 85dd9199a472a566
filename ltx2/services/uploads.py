"""Validate and store user uploads: reference photos and voice recordings.

Every upload is treated as hostile until it has been decoded: the byte count is
capped while reading (Content-Length is never consulted), the type comes from
the bytes rather than from the file name or the client's content type, and the
stored name is generated here. Failures raise :class:`UploadError`, which
carries the HTTP status and the text of an RFC 9457 problem document.

The image decision: photos are re-encoded to **PNG**. The reference photo is a
conditioning input for the model, so a lossless copy avoids adding a second
generation of JPEG artefacts on top of whatever the camera produced, and PNG
output from a fresh image object carries no EXIF/XMP/ICC/text metadata (GPS
positions and camera serials never reach disk). Larger files are an acceptable
cost for a self-hosted server with a 40 MP cap.

Audio is kept byte-for-byte (after proving it decodes) because re-encoding a
voice recording would only lose quality; the extension follows the container
that FFmpeg detected.

This module must stay free of torch: the API process imports it.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import av
from PIL import Image

from ltx2.domain.digest import sha256_file
from ltx2.media import images
from ltx2.media.images import ImageRejected

__all__ = [
    "UploadError",
    "UploadLimits",
    "StoredFile",
    "Source",
    "store_image",
    "store_audio",
    "store_upload",
    "safe_child",
    "ACCEPTED_IMAGE_FORMATS",
    "ACCEPTED_AUDIO_FORMATS",
]

MB = 1024 * 1024

# Images are decoded by the one allow-listed decoder (ltx2.media.images: PNG, JPEG, WebP; EPS, which shells out
# to Ghostscript, and every other Pillow plugin never see upload bytes).
ACCEPTED_IMAGE_FORMATS = images.ACCEPTED
ACCEPTED_AUDIO_FORMATS = ("WAV", "MP3", "M4A/MP4", "OGG", "WebM", "FLAC")

# FFmpeg demuxers allowed to open uploads. Without this, FFmpeg would happily
# probe an uploaded HLS/concat playlist and follow the paths or URLs inside it.
_AV_OPEN_OPTIONS = {
    "format_whitelist": "wav,mp3,mov,mp4,m4a,ogg,matroska,webm,flac",
    "protocol_whitelist": "file",
}
# Codecs that are legal inside WebM; other Matroska content is stored as .mkv.
_WEBM_AUDIO = {"opus", "vorbis"}
_WEBM_VIDEO = {"vp8", "vp9", "av1"}

# Encoder padding (e.g. MP3/AAC priming) can add a few tens of milliseconds to
# a recording that the user trimmed to exactly the limit.
_DURATION_SLACK_S = 0.1
_CHUNK = 1 << 16
_ACCEPTED_TEXT = (
    f"Send a photo ({', '.join(ACCEPTED_IMAGE_FORMATS)}) or a voice recording ({', '.join(ACCEPTED_AUDIO_FORMATS)})."
)

Source = bytes | bytearray | memoryview | IO[bytes]


class UploadError(ValueError):
    """An upload was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, title: str, detail: str):
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail

    def problem(self) -> dict:
        """RFC 9457 problem details body (serve as application/problem+json)."""
        return {"type": "about:blank", "title": self.title, "status": self.status, "detail": self.detail}


def _too_large(detail: str) -> UploadError:
    return UploadError(413, "Upload too large", detail)


def _unsupported(detail: str) -> UploadError:
    return UploadError(415, "Unsupported media type", detail)


def _invalid(detail: str) -> UploadError:
    return UploadError(422, "Invalid upload", detail)


@dataclass(frozen=True)
class UploadLimits:
    max_image_bytes: int = 20 * MB
    max_audio_bytes: int = 50 * MB
    max_image_pixels: int = 40_000_000  # decompression-bomb limit (width * height)
    min_image_side: int = 64
    max_audio_seconds: float = 120.0


@dataclass(frozen=True)
class StoredFile:
    path: Path
    sha256: str  # of the bytes stored at ``path``
    size: int
    content_type: str
    kind: str  # "image" or "audio"
    width: int | None = None
    height: int | None = None
    duration: float | None = None


# --------------------------------------------------------------------------- reading


def _chunks(source: Source, cap: int):
    """Yield the upload in chunks, never reading more than ``cap + 1`` bytes."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        if view.nbytes > cap:
            raise _too_large(f"the upload exceeds the limit of {_fmt_bytes(cap)}")
        for i in range(0, view.nbytes, _CHUNK):
            yield bytes(view[i : i + _CHUNK])
        return
    # Starlette's UploadFile has an async read(); its .file is the sync spool.
    stream = source.file if hasattr(source, "file") and hasattr(source.file, "read") else source
    yield from _capped_reads(stream, cap)


def _spool(source: Source, dest_dir: Path, cap: int) -> tuple[Path, int, str]:
    """Copy the upload to a hidden temp file in ``dest_dir``, refusing past ``cap`` bytes.

    The temp file lives in ``dest_dir`` so that the final rename is atomic, and
    starts with '.' so listings and :func:`safe_child` never expose it.
    """
    tmp = dest_dir / f".upload-{uuid.uuid4().hex}.part"
    digest = hashlib.sha256()
    size = 0
    try:
        with open(tmp, "xb") as out:
            for chunk in _chunks(source, cap):
                size += len(chunk)
                if size > cap:
                    raise _too_large(f"the upload exceeds the limit of {_fmt_bytes(cap)}")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size == 0:
            raise _invalid("the upload is empty")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp, size, digest.hexdigest()


def _capped_reads(stream, cap: int):
    # Ask for at most cap + 1 bytes in total: one byte past the cap is enough
    # to know the upload is too large, however long the client keeps sending.
    total = 0
    while total <= cap:
        chunk = stream.read(min(_CHUNK, cap + 1 - total))
        if not chunk:
            return
        if not isinstance(chunk, (bytes, bytearray)):
            raise TypeError("upload streams must be opened in binary mode")
        total += len(chunk)
        yield bytes(chunk)


def _fmt_bytes(n: int) -> str:
    return f"{n / MB:g} MB" if n >= MB else f"{n} bytes"


def _prepare_dir(dest_dir: Path | str) -> Path:
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    return dest


# --------------------------------------------------------------------------- images


def _rejected(exc: ImageRejected) -> UploadError:
    title = {413: "Upload too large", 415: "Unsupported media type"}.get(exc.status, "Invalid upload")
    return UploadError(exc.status, title, f"the image is {exc.reason}" if exc.reason.startswith("too ") else exc.reason)


def _open_image(path: Path) -> Image.Image | None:
    """Identify ``path`` as an allowed image (header only); None when it is not one."""
    try:
        return images.open_image(path)
    except ImageRejected as e:
        if e.status == 415:
            return None
        raise _rejected(e) from None


def _finish_image(img: Image.Image, dest_dir: Path, limits: UploadLimits) -> StoredFile:
    with img:
        try:
            # The header's size is checked before any pixel is decoded; decoding waits for a decode slot.
            header = images.check_header(img, max_pixels=limits.max_image_pixels, min_side=limits.min_image_side)
        except ImageRejected as e:
            raise _rejected(e) from None
        # On the decode pool from the first pixel until the PNG copy is written: parallel uploads queue there.
        return images.in_decode_pool(_decode_to_png, img, header, dest_dir)


def _decode_to_png(img: Image.Image, header: images.Header, dest_dir: Path) -> StoredFile:
    try:
        rgb = images.decode_opened(img, header)
    except ImageRejected as e:
        raise _rejected(e) from None
    finally:
        img.close()  # the decoded original goes as soon as its RGB copy exists
    # An empty info dict on the freshly converted image, so nothing (EXIF, ICC, XMP, text chunks) can ride
    # along into the PNG encoder; no copy of the pixels is made for that (a 40 MP image is 120 MB).
    clean = rgb
    clean.info = {}
    final = dest_dir / f"{uuid.uuid4().hex}.png"
    part = dest_dir / f".{final.name}.part"
    try:
        with open(part, "xb") as out:
            clean.save(out, format="PNG")
            out.flush()
            os.fsync(out.fileno())
        sha, size = sha256_file(part), part.stat().st_size
        os.replace(part, final)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return StoredFile(final, sha, size, "image/png", "image", width=clean.width, height=clean.height)


# --------------------------------------------------------------------------- audio


def _open_audio(path: Path):
    """Open ``path`` with a whitelisted FFmpeg demuxer; None when it is not one."""
    try:
        return av.open(str(path), container_options=_AV_OPEN_OPTIONS)
    except Exception:  # noqa: BLE001 - see below
        # Unknown, non-whitelisted or unparseable containers are all "not a
        # supported recording" from the client's point of view.
        return None


def _audio_type(container) -> tuple[str, str] | None:
    names = set(container.format.name.split(","))
    if "wav" in names:
        return "wav", "audio/wav"
    if "mp3" in names:
        return "mp3", "audio/mpeg"
    if names & {"mov", "mp4", "m4a"}:
        # One demuxer serves all ISO-BMFF files; a video track makes it an MP4.
        return ("mp4", "video/mp4") if container.streams.video else ("m4a", "audio/mp4")
    if "ogg" in names:
        return "ogg", "audio/ogg"
    if names & {"matroska", "webm"}:
        audio_ok = all(s.codec_context.name in _WEBM_AUDIO for s in container.streams.audio)
        video_ok = all(s.codec_context.name in _WEBM_VIDEO for s in container.streams.video)
        if not (audio_ok and video_ok):
            return "mkv", "video/x-matroska" if container.streams.video else "audio/x-matroska"
        return "webm", "video/webm" if container.streams.video else "audio/webm"
    if "flac" in names:
        return "flac", "audio/flac"
    return None


def _finish_audio(container, tmp: Path, size: int, sha: str, dest_dir: Path, limits: UploadLimits) -> StoredFile:
    with container:
        kind = _audio_type(container)
        if kind is None:
            raise _unsupported(f"{container.format.name} files are not accepted. {_ACCEPTED_TEXT}")
        if not container.streams.audio:
            raise _unsupported(f"the {kind[0].upper()} file has no audio track. {_ACCEPTED_TEXT}")
        stream = container.streams.audio[0]
        # Decode everything (bounded by the byte cap and stopped at the
        # duration limit): header durations can lie, decoded samples cannot.
        seconds = 0.0
        limit = limits.max_audio_seconds + _DURATION_SLACK_S
        try:
            for frame in container.decode(stream):
                if frame.sample_rate and frame.samples:
                    seconds += frame.samples / frame.sample_rate
                if seconds > limit:
                    raise _invalid(f"the recording is longer than the limit of {limits.max_audio_seconds:g} seconds")
        except UploadError:
            raise
        except Exception as e:
            raise _invalid(f"the {kind[0].upper()} audio could not be decoded: {e}") from e
        if seconds <= 0:
            raise _invalid(f"the {kind[0].upper()} file contains no decodable audio")

    ext, content_type = kind
    final = dest_dir / f"{uuid.uuid4().hex}.{ext}"
    os.replace(tmp, final)
    return StoredFile(final, sha, size, content_type, "audio", duration=round(seconds, 3))


# --------------------------------------------------------------------------- public API


def store_image(source: Source, dest_dir: Path | str, limits: UploadLimits | None = None) -> StoredFile:
    """Validate a photo and store it as a metadata-free, upright RGB PNG in ``dest_dir``.

    ``source`` is bytes or a binary stream (a FastAPI ``UploadFile`` works too).
    Raises :class:`UploadError` (413/415/422); ``dest_dir`` is untouched on failure.
    """
    limits = limits or UploadLimits()
    dest = _prepare_dir(dest_dir)
    tmp, _, _ = _spool(source, dest, limits.max_image_bytes)
    try:
        img = _open_image(tmp)
        if img is None:
            raise _unsupported(f"the file is not a supported image ({', '.join(ACCEPTED_IMAGE_FORMATS)})")
        return _finish_image(img, dest, limits)
    finally:
        tmp.unlink(missing_ok=True)


def store_audio(source: Source, dest_dir: Path | str, limits: UploadLimits | None = None) -> StoredFile:
    """Validate a voice recording and store its original bytes in ``dest_dir``.

    Raises :class:`UploadError` (413/415/422); ``dest_dir`` is untouched on failure.
    """
    limits = limits or UploadLimits()
    dest = _prepare_dir(dest_dir)
    tmp, size, sha = _spool(source, dest, limits.max_audio_bytes)
    try:
        container = _open_audio(tmp)
        if container is None:
            raise _unsupported(f"the file is not a supported recording ({', '.join(ACCEPTED_AUDIO_FORMATS)})")
        return _finish_audio(container, tmp, size, sha, dest, limits)
    finally:
        tmp.unlink(missing_ok=True)  # already renamed on success


def store_upload(source: Source, dest_dir: Path | str, limits: UploadLimits | None = None) -> StoredFile:
    """Store a photo or a recording, whichever the bytes turn out to be.

    Tries Pillow first, then FFmpeg; anything else is a 415. Each kind is held
    to its own byte limit once the kind is known.
    """
    limits = limits or UploadLimits()
    dest = _prepare_dir(dest_dir)
    tmp, size, sha = _spool(source, dest, max(limits.max_image_bytes, limits.max_audio_bytes))
    try:
        img = _open_image(tmp)
        if img is not None:
            if size > limits.max_image_bytes:
                img.close()
                raise _too_large(f"images are limited to {_fmt_bytes(limits.max_image_bytes)}")
            return _finish_image(img, dest, limits)
        container = _open_audio(tmp)
        if container is not None:
            if size > limits.max_audio_bytes:
                container.close()
                raise _too_large(f"recordings are limited to {_fmt_bytes(limits.max_audio_bytes)}")
            return _finish_audio(container, tmp, size, sha, dest, limits)
        raise _unsupported(f"the file is neither a supported image nor a supported recording. {_ACCEPTED_TEXT}")
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- serving files back

_DRIVE = re.compile(r"^[A-Za-z]:")
_MAX_NAME = 1024


def safe_child(root: Path | str, name: str) -> Path | None:
    """Resolve a client-supplied relative name to a regular file inside ``root``.

    Returns the resolved path, or None for anything that is not plainly a file
    under ``root``. Never raises for hostile input.
    """
    try:
        if not isinstance(name, str) or not name or len(name) > _MAX_NAME:
            return None
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            return None  # NUL and other control characters
        # '\\' and ':' are Windows separators/drive letters/ADS; '%' only shows
        # up when someone (double-)encodes a path, and generated names are hex.
        if any(c in name for c in "\\:%") or _DRIVE.match(name):
            return None
        if name.startswith("/") or ".." in name:
            return None
        for part in name.split("/"):
            # Empty parts ("a//b", "a/"), dotfiles, padded names, over-long parts.
            if not part or part.startswith(".") or part != part.strip() or len(part.encode()) > 255:
                return None
        base = Path(root).resolve(strict=True)
        target = (base / name).resolve(strict=True)
        # Symlinks are followed by resolve(): the real target must stay inside
        # root and must not be a hidden file there either.
        if target == base or not target.is_relative_to(base):
            return None
        if any(part.startswith(".") for part in target.relative_to(base).parts):
            return None
        if not stat.S_ISREG(target.stat().st_mode):
            return None
        return target
    except (OSError, ValueError, RuntimeError):
        # Missing files, loops, over-long paths, unencodable names.
        return None
