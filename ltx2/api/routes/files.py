"""Uploads (/v1/files) and output downloads (/download/{filename}, with HTTP Range)."""

from __future__ import annotations

from fastapi import APIRouter, File, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from ltx2.api import deps
from ltx2.api.errors import Problem
from ltx2.api.uploads import UploadError, UploadLimits, safe_child, store_upload
from ltx2.jobs.documents import _iso

router = APIRouter(tags=["files"])
downloads = APIRouter(tags=["files"])

_MEDIA_TYPES = {".mp4": "video/mp4", ".jpg": "image/jpeg", ".json": "application/json",
                ".srt": "application/x-subrip; charset=utf-8", ".vtt": "text/vtt; charset=utf-8"}


def file_document(record, base_url: str) -> dict:
    return {
        "id": record.id,
        "kind": record.kind,
        "content_type": record.content_type,
        "size": record.size,
        "sha256": record.sha256,
        "original_name": record.original_name,
        "meta": record.meta,
        "created_at": _iso(record.created_at),
        "urls": {"get": f"{base_url}/v1/files/{record.id}", "content": f"{base_url}/v1/files/{record.id}/content"},
    }


def upload_limits(settings) -> UploadLimits:
    return UploadLimits(max_image_bytes=min(20, settings.max_upload_mb) * 2**20,
                        max_audio_bytes=settings.max_upload_mb * 2**20,
                        max_audio_seconds=settings.max_script_seconds,
                        max_image_pixels=int(settings.max_image_mp * 1_000_000))


@router.post("/v1/files", status_code=201, summary="Upload a reference photo or a voice recording")
def upload_file(request: Request, file: UploadFile = File(..., description="An image or an audio file")):
    store, settings = deps.store(request), deps.settings(request)
    try:
        stored = store_upload(file.file, settings.uploads_dir, upload_limits(settings))
    except UploadError as exc:
        raise Problem(exc.status, exc.detail, title=exc.title) from exc
    meta = {k: getattr(stored, k) for k in ("width", "height", "duration") if getattr(stored, k, None) is not None}
    record = store.add_file(kind=stored.kind, content_type=stored.content_type,
                            path=stored.path.relative_to(settings.uploads_dir).as_posix(), sha256=stored.sha256,
                            size=stored.size, original_name=(file.filename or "")[:255] or None, meta=meta)
    return JSONResponse(file_document(record, settings.base_url), status_code=201)


@router.get("/v1/files/{file_id}", summary="An uploaded file's record")
def get_file(file_id: str, request: Request):
    record = deps.store(request).get_file(file_id)
    if record is None:
        raise Problem(404, f"no file {file_id}")
    return file_document(record, deps.settings(request).base_url)


@router.get("/v1/files/{file_id}/content", summary="An uploaded file's bytes")
def get_file_content(file_id: str, request: Request):
    settings = deps.settings(request)
    record = deps.store(request).get_file(file_id)
    path = safe_child(settings.uploads_dir, record.path) if record else None
    if path is None or not path.is_file():
        raise Problem(404, f"no file {file_id}")
    return FileResponse(path, media_type=record.content_type)


@downloads.get("/download/{filename}", summary="A finished video, thumbnail or metadata file (Range supported)")
def download(filename: str, request: Request):
    settings = deps.settings(request)
    path = safe_child(settings.outputs_dir, filename) if "/" not in filename else None
    if path is None or path.suffix not in _MEDIA_TYPES or not path.is_file():
        raise Problem(404, f"no output file {filename!r}")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], filename=path.name,
                        content_disposition_type="inline")
