"""Deleted jobs wait in the trash for AVATAR_TRASH_DAYS: list, restore, or empty one now (ltx2.services.outputs)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from ltx2.api.deps import SettingsDep, StoreDep
from ltx2.api.schemas import JobDocument, TrashList
from ltx2.services import outputs
from ltx2.services.predictions import document

router = APIRouter(tags=["trash"])


@router.get("/v1/trash", response_model=TrashList, summary="Deleted jobs that can still be restored")
def list_trash(settings: SettingsDep):
    return outputs.list_trash(settings)


@router.post(
    "/v1/trash/{job_id}/restore",
    response_model=JobDocument,
    summary="Restore a deleted job: its record and every file it made, as before",
)
def restore(job_id: str, store: StoreDep, settings: SettingsDep):
    return document(store, settings, outputs.restore(store, settings, job_id))


@router.delete(
    "/v1/trash/{job_id}", status_code=204, response_class=Response, summary="Delete a trashed job's files for good"
)
def purge(job_id: str, settings: SettingsDep):
    outputs.purge(settings, job_id)
    return Response(status_code=204)
