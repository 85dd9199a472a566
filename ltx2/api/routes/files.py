"""Uploads (/v1/files) and output downloads (/download/{filename}, with HTTP Range)."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from ltx2.api.deps import SettingsDep, StoreDep
from ltx2.api.schemas import FileDocument, FileList
from ltx2.services import files as svc

router = APIRouter(tags=["files"])
downloads = APIRouter(tags=["files"])
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_BYTES = {200: {"content": {"application/octet-stream": _BINARY}, "description": "The file's bytes"}}
_OUTPUTS = {
    200: {
        "content": {
            kind: _BINARY
            for kind in ("video/mp4", "image/jpeg", "application/json", "text/vtt", "application/x-subrip")
        },
        "description": "The MP4, its JPEG thumbnail, its metadata or captions; a signed URL opens it without the key",
    }
}


@router.post(
    "/v1/files",
    status_code=201,
    response_model=FileDocument,
    summary="Upload a reference photo or a voice recording (Replicate's files.create)",
)
def upload_file(
    store: StoreDep,
    settings: SettingsDep,
    content: Annotated[UploadFile | None, File(description="An image or an audio file (Replicate's field)")] = None,
    file: Annotated[UploadFile | None, File(description="The same, under this server's earlier field name")] = None,
    filename: Annotated[str | None, Form(max_length=255, description="Name to keep (default: the part's)")] = None,
    type: Annotated[  # noqa: A002 - Replicate's field name
        str | None, Form(max_length=255, description="Accepted; the type is read from the bytes, never trusted")
    ] = None,
    metadata: Annotated[
        UploadFile | str | None, Form(description="A JSON object returned as the File's `metadata` (text or JSON part)")
    ] = None,
):
    record = svc.create_file(store, settings, content or file, filename, metadata)
    return JSONResponse(svc.file_document(record, settings.base_url), status_code=201)


@router.get("/v1/files", response_model=FileList, summary="Uploaded files, newest first (paginated)")
def list_files(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
):
    return svc.list_files(store, settings, httpx.URL(str(request.url)), cursor, limit)


@router.get("/v1/files/{file_id}", response_model=FileDocument, summary="An uploaded file's record")
def get_file(file_id: str, store: StoreDep, settings: SettingsDep):
    return svc.file_document(svc.get_record(store, file_id), settings.base_url)


@router.delete(
    "/v1/files/{file_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an upload (409 while a queued or running prediction uses it)",
)
def delete_file(file_id: str, store: StoreDep, settings: SettingsDep):
    svc.delete_file(store, settings, file_id)
    return Response(status_code=204)


@router.get(
    "/v1/files/{file_id}/content", response_class=FileResponse, responses=_BYTES, summary="An uploaded file's bytes"
)
def get_file_content(file_id: str, store: StoreDep, settings: SettingsDep):
    path, content_type = svc.content_path(store, settings, file_id)
    return FileResponse(path, media_type=content_type)


@downloads.get(
    "/download/{filename}",
    response_class=FileResponse,
    responses=_OUTPUTS,
    summary="A finished video, thumbnail or metadata file (Range supported)",
)
def download(filename: str, settings: SettingsDep):
    path, media_type = svc.output_path(settings, filename)
    return FileResponse(path, media_type=media_type, filename=path.name, content_disposition_type="inline")
