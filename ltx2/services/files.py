"""Uploaded files: store an upload (after the allow-listed decoder), read its record or bytes, drop it."""

from __future__ import annotations

from pathlib import Path

from ltx2.domain.errors import Problem
from ltx2.services.uploads import UploadError, UploadLimits, safe_child, store_image, store_upload
from ltx2.settings import Settings
from ltx2.store.documents import iso
from ltx2.store.jobs import JobStore

MEDIA_TYPES = {
    ".mp4": "video/mp4",
    ".jpg": "image/jpeg",
    ".json": "application/json",
    ".srt": "application/x-subrip; charset=utf-8",
    ".vtt": "text/vtt; charset=utf-8",
}


def file_document(record, base_url: str) -> dict:
    return {
        "id": record.id,
        "kind": record.kind,
        "content_type": record.content_type,
        "size": record.size,
        "sha256": record.sha256,
        "original_name": record.original_name,
        "meta": record.meta,
        "created_at": iso(record.created_at),
        "urls": {"get": f"{base_url}/v1/files/{record.id}", "content": f"{base_url}/v1/files/{record.id}/content"},
    }


def upload_limits(settings: Settings) -> UploadLimits:
    return UploadLimits(
        max_image_bytes=min(20, settings.max_upload_mb) * 2**20,
        max_audio_bytes=settings.max_upload_mb * 2**20,
        max_audio_seconds=settings.max_script_seconds,
        max_image_pixels=int(settings.max_image_mp * 1_000_000),
    )


def add_upload(store: JobStore, settings: Settings, stream, filename: str | None):
    """An image or audio upload, decoded and re-encoded, recorded; 4xx for anything else."""
    try:
        stored = store_upload(stream, settings.uploads_dir, upload_limits(settings))
    except UploadError as exc:
        raise Problem(exc.status, exc.detail, title=exc.title) from exc
    meta = {k: getattr(stored, k) for k in ("width", "height", "duration") if getattr(stored, k, None) is not None}
    return store.add_file(
        kind=stored.kind,
        content_type=stored.content_type,
        path=stored.path.relative_to(settings.uploads_dir).as_posix(),
        sha256=stored.sha256,
        size=stored.size,
        original_name=(filename or "")[:255] or None,
        meta=meta,
    )


def add_image(
    store: JobStore, settings: Settings, stream, filename: str | None, *, field: str, purpose: str | None = None
):
    """An image upload (reference photo, training photo); the problem names `field`."""
    try:
        stored = store_image(stream, settings.uploads_dir, upload_limits(settings))
    except UploadError as exc:
        raise Problem(exc.status, f"{field}: {exc.detail}" if field else exc.detail, title=exc.title) from exc
    meta = {"width": stored.width, "height": stored.height}
    if purpose:
        meta["purpose"] = purpose
    return store.add_file(
        kind="image",
        content_type=stored.content_type,
        path=stored.path.relative_to(settings.uploads_dir).as_posix(),
        sha256=stored.sha256,
        size=stored.size,
        original_name=filename,
        meta=meta,
    )


def drop(store: JobStore, settings: Settings, file_id: str) -> None:
    """Delete an upload's bytes and record (a rejected request keeps nothing)."""
    record = store.get_file(file_id)
    if record is not None:
        (settings.uploads_dir / record.path).unlink(missing_ok=True)
        store.delete_file(file_id)


def get_record(store: JobStore, file_id: str):
    record = store.get_file(file_id)
    if record is None:
        raise Problem(404, f"no file {file_id}")
    return record


def content_path(store: JobStore, settings: Settings, file_id: str) -> tuple[Path, str]:
    record = store.get_file(file_id)
    path = safe_child(settings.uploads_dir, record.path) if record else None
    if path is None or not path.is_file():
        raise Problem(404, f"no file {file_id}")
    return path, record.content_type


def output_path(settings: Settings, filename: str) -> tuple[Path, str]:
    """A finished video, thumbnail, metadata or caption file inside outputs/, or 404."""
    path = safe_child(settings.outputs_dir, filename) if "/" not in filename else None
    if path is None or path.suffix not in MEDIA_TYPES or not path.is_file():
        raise Problem(404, f"no output file {filename!r}")
    return path, MEDIA_TYPES[path.suffix]
