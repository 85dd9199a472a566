"""Face profiles: /v1/trainings, /v1/profiles and the seed's /train-face, /training-status, /training-progress.

The seed's training invented an "accuracy"; these routes report the real training loss instead. The use cases
(photo checks before anything is stored, profile files) are in ltx2.services.trainings.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse

from ltx2.api.deps import SettingsDep, StoreDep
from ltx2.api.schemas import (
    JobDocument,
    JobPage,
    ProfileDocument,
    ProfileList,
    SeedTrainAccepted,
    TrainingProgress,
    TrainingStatus,
)
from ltx2.services import predictions, seed
from ltx2.services import trainings as svc
from ltx2.services.predictions import MAX_CURSOR, document

router = APIRouter(tags=["face profiles"])
seed_router = APIRouter(tags=["seed API"])


def _training(store, job_id: str):
    return predictions.get_job(store, job_id, kind="train", noun="training")


@router.post(
    "/v1/trainings",
    status_code=201,
    response_model=JobDocument,
    summary="Train a face profile from 3–10 photos of one person",
)
def create_training(
    store: StoreDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=64)],
    photos: Annotated[list[UploadFile], File(description="3–10 photos, exactly one face each")],
    steps: Annotated[int, Form(ge=10, le=2000)] = 300,
    rank: Annotated[int, Form(ge=1, le=128)] = 16,
    learning_rate: Annotated[float, Form(gt=0, le=1e-2)] = 1e-4,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
):
    job = svc.start_training(
        store,
        settings,
        name=name,
        steps=steps,
        uploads=photos,
        rank=rank,
        alpha=float(rank),
        learning_rate=learning_rate,
        idempotency_key=idempotency_key,
    )
    return JSONResponse(document(store, settings, job), status_code=201)


@router.get("/v1/trainings", response_model=JobPage, summary="List trainings, newest first")
def list_trainings(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    cursor: Annotated[int | None, Query(ge=0, le=MAX_CURSOR)] = None,
    limit: int = 50,
):
    jobs, nxt = store.list(kind="train", cursor=cursor, limit=max(1, min(limit, 200)))
    return {
        "results": [document(store, settings, j) for j in jobs],
        "next": str(request.url.include_query_params(cursor=nxt)) if nxt is not None else None,
    }


@router.get("/v1/trainings/{job_id}", response_model=JobDocument, summary="Get a training (live loss in progress)")
def get_training(job_id: str, store: StoreDep, settings: SettingsDep):
    return document(store, settings, _training(store, job_id))


@router.post(
    "/v1/trainings/{job_id}/cancel", response_model=JobDocument, summary="Cancel a training (no profile is kept)"
)
def cancel_training(job_id: str, store: StoreDep, settings: SettingsDep):
    job = predictions.cancel(store, _training(store, job_id), noun="training")
    return document(store, settings, job)


@router.get("/v1/profiles", response_model=ProfileList, summary="List face profiles")
def list_profiles(store: StoreDep, settings: SettingsDep):
    return {"results": [svc.profile_document(p, settings.base_url) for p in store.list_profiles()]}


@router.get("/v1/profiles/{name}", response_model=ProfileDocument, summary="One face profile")
def get_profile(name: str, store: StoreDep, settings: SettingsDep):
    return svc.profile_document(svc.get_profile(store, name), settings.base_url)


@router.get(
    "/v1/profiles/{name}/photo",
    response_class=FileResponse,
    responses={200: {"content": {"image/png": {}}, "description": "The photo (PNG)"}},
    summary="The profile's best photo (its default reference image)",
)
def profile_photo(name: str, store: StoreDep, settings: SettingsDep):
    return FileResponse(svc.profile_photo(store, settings, name), media_type="image/png")


@router.get(
    "/v1/profiles/{name}/preview",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "The preview frame (JPEG)"}},
    summary="The first frame of a short clip made with the profile when its training ended",
)
def profile_preview(name: str, store: StoreDep, settings: SettingsDep):
    return FileResponse(svc.profile_preview(store, settings, name), media_type="image/jpeg")


@router.delete(
    "/v1/profiles/{name}", status_code=204, response_class=Response, summary="Delete a face profile and its files"
)
def delete_profile(name: str, store: StoreDep, settings: SettingsDep):
    svc.delete_profile(store, settings, name)
    return Response(status_code=204)


# --- the seed's paths -------------------------------------------------------------------------------------


@seed_router.post("/train-face", response_model=SeedTrainAccepted, summary="Seed API: train a face profile (multipart)")
def train_face(
    store: StoreDep,
    settings: SettingsDep,
    person_name: Annotated[str, Form(max_length=64)],
    training_photos: Annotated[list[UploadFile], File()],
    training_steps: Annotated[int, Form(ge=100, le=500)] = 300,
):
    job = svc.start_training(store, settings, name=person_name, steps=training_steps, uploads=training_photos)
    return {
        "job_id": job.id,
        "status": seed.TRAINING_STARTED,
        "person_name": person_name,
        "training_steps": training_steps,
        "message": f"training {len(training_photos)} photos for {training_steps} steps (queued)",
    }


@seed_router.get(
    "/training-status", response_model=TrainingStatus, summary="Seed API: trained profiles and running trainings"
)
def training_status(store: StoreDep, settings: SettingsDep):
    return seed.training_status(store, settings)


@seed_router.get(
    "/training-progress/{job_id}",
    response_model=TrainingProgress,
    summary="Seed API: a training's progress (real loss, no 'accuracy')",
)
def training_progress(job_id: str, store: StoreDep):
    return seed.training_progress(_training(store, job_id))
