"""Face profiles: /v1/trainings, /v1/profiles and the seed's /train-face, /training-status, /training-progress.

Photos are checked here, before anything is stored (decoded, exactly one face, big enough), so a bad photo is
a 422 naming it and the reason, and a rejected request keeps nothing. The seed's training invented an
"accuracy"; these routes report the real training loss instead.
"""

from __future__ import annotations

import io
import re
import shutil

from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from pydantic import ValidationError

from ltx2.api import deps
from ltx2.api.errors import Problem
from ltx2.api.routes.files import upload_limits
from ltx2.api.routes.legacy import SEED_STATUS
from ltx2.api.routes.predictions import MAX_CURSOR, document, get_job
from ltx2.api.uploads import UploadError, safe_child, store_image
from ltx2.jobs import notify
from ltx2.jobs.documents import _iso
from ltx2.jobs.inputs import TrainInput
from ltx2.jobs.models import TERMINAL
from ltx2.jobs.store import IdempotencyConflict, JobStore
from ltx2.settings import Settings

router = APIRouter(tags=["face profiles"])
seed = APIRouter(tags=["seed API"])
MAX_PHOTO_BYTES = 20 * 2**20


def profile_document(profile, base_url: str) -> dict:
    return {
        "name": profile.name,
        "trigger": profile.trigger,
        "photos": len(profile.photos),
        "best_photo_url": f"{base_url}/v1/profiles/{profile.name}/photo",
        "steps": profile.steps,
        "final_loss": profile.final_loss,
        "validation_loss": profile.validation_loss,
        "training_job": profile.training_job,
        "created_at": _iso(profile.created_at),
    }


def _read_photos(uploads: list[UploadFile]) -> list[tuple[str, bytes]]:
    photos = []
    for i, upload in enumerate(uploads):
        name = (upload.filename or f"photo {i + 1}")[:120]
        data = upload.file.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise Problem(413, f"{name}: larger than {MAX_PHOTO_BYTES // 2**20} MB")
        photos.append((name, data))
    return photos


def start_training(store: JobStore, settings: Settings, *, name: str, steps: int, uploads: list[UploadFile],
                   idempotency_key: str | None = None, **extra):
    """Check everything, store the photos, queue the job. Nothing is kept if anything is wrong."""
    from ltx2.training.photos import PhotosRejected, check_count, validate_photos

    try:
        TrainInput(name=name, photos=["x"] * 3, steps=steps, **extra)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Problem(422, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc
    if store.get_profile(name) is not None:
        raise Problem(409, f"a face profile named {name!r} already exists: delete it first or pick another name")
    if any(job.input.get("name") == name for job in store.active_jobs("train")):
        raise Problem(409, f"a training for {name!r} is already queued or running")
    try:
        check_count(len(uploads))  # before a byte of any photo is read
        photos = _read_photos(uploads)
        validate_photos(photos)
    except PhotosRejected as exc:
        raise Problem(422, str(exc), title="Photos rejected",
                      extra={"problems": [{"photo": p.name, "reason": p.reason} for p in exc.problems]}) from exc
    file_ids, stored_paths = [], []
    try:
        for photo_name, data in photos:
            stored = store_image(io.BytesIO(data), settings.uploads_dir, upload_limits(settings))
            stored_paths.append(stored.path)
            record = store.add_file(kind="image", content_type=stored.content_type,
                                    path=stored.path.relative_to(settings.uploads_dir).as_posix(),
                                    sha256=stored.sha256, size=stored.size, original_name=photo_name,
                                    meta={"width": stored.width, "height": stored.height, "purpose": "training"})
            file_ids.append(record.id)
        inp = TrainInput(name=name, photos=file_ids, steps=steps, **extra)
        job, _ = store.create("train", inp.model_dump(), idempotency_key=idempotency_key)
    except Exception as exc:
        for path in stored_paths:
            path.unlink(missing_ok=True)
        for file_id in file_ids:
            store.delete_file(file_id)
        if isinstance(exc, UploadError):
            raise Problem(exc.status, exc.detail, title=exc.title) from exc
        if isinstance(exc, IdempotencyConflict):
            raise Problem(409, "this Idempotency-Key was already used with a different request",
                          extra={"existing": exc.existing.id}) from exc
        raise
    return job


@router.post("/v1/trainings", status_code=201, summary="Train a face profile from 3–10 photos of one person")
def create_training(
    request: Request,
    name: str = Form(..., max_length=64),
    photos: list[UploadFile] = File(..., description="3–10 photos, exactly one face each"),
    steps: int = Form(300, ge=10, le=2000),
    rank: int = Form(16, ge=1, le=128),
    learning_rate: float = Form(1e-4, gt=0, le=1e-2),
    idempotency_key: str | None = Header(default=None, max_length=255),
):
    store, settings = deps.store(request), deps.settings(request)
    job = start_training(store, settings, name=name, steps=steps, uploads=photos, rank=rank,
                         alpha=float(rank), learning_rate=learning_rate, idempotency_key=idempotency_key)
    return JSONResponse(document(store, settings, job), status_code=201)


def _training(store: JobStore, job_id: str):
    job = get_job(store, job_id)
    if job.kind != "train":
        raise Problem(404, f"no training {job_id}")
    return job


@router.get("/v1/trainings", summary="List trainings, newest first")
def list_trainings(request: Request, cursor: int | None = Query(default=None, ge=0, le=MAX_CURSOR),
                   limit: int = 50):
    store, settings = deps.store(request), deps.settings(request)
    jobs, nxt = store.list(kind="train", cursor=cursor, limit=max(1, min(limit, 200)))
    return {"results": [document(store, settings, j) for j in jobs],
            "next": str(request.url.include_query_params(cursor=nxt)) if nxt is not None else None}


@router.get("/v1/trainings/{job_id}", summary="Get a training (live loss in progress)")
def get_training(job_id: str, request: Request):
    store, settings = deps.store(request), deps.settings(request)
    return document(store, settings, _training(store, job_id))


@router.post("/v1/trainings/{job_id}/cancel", summary="Cancel a training (no profile is kept)")
def cancel_training(job_id: str, request: Request):
    store, settings = deps.store(request), deps.settings(request)
    job = _training(store, job_id)
    if job.status not in TERMINAL:
        job = store.request_cancel(job_id)
        if job.status in TERMINAL:
            notify.send(store, settings, job_id, "completed")
    return document(store, settings, job)


@router.get("/v1/profiles", summary="List face profiles")
def list_profiles(request: Request):
    settings = deps.settings(request)
    return {"results": [profile_document(p, settings.base_url) for p in deps.store(request).list_profiles()]}


def _profile(store: JobStore, name: str):
    profile = store.get_profile(name)
    if profile is None:
        raise Problem(404, f"no face profile {name!r}")
    return profile


@router.get("/v1/profiles/{name}", summary="One face profile")
def get_profile(name: str, request: Request):
    return profile_document(_profile(deps.store(request), name), deps.settings(request).base_url)


@router.get("/v1/profiles/{name}/photo", summary="The profile's best photo (its default reference image)")
def profile_photo(name: str, request: Request):
    settings = deps.settings(request)
    profile = _profile(deps.store(request), name)
    folder = safe_child_dir(settings, profile.folder)
    path = safe_child(folder, profile.best_photo) if folder else None
    if path is None:
        raise Problem(404, f"the photo of profile {name!r} is missing")
    return FileResponse(path, media_type="image/png")


def safe_child_dir(settings: Settings, folder: str):
    if not re.fullmatch(r"[0-9a-f]{20}", folder or ""):
        return None
    path = settings.profiles_dir / folder
    return path if path.is_dir() else None


@router.delete("/v1/profiles/{name}", status_code=204, summary="Delete a face profile and its files")
def delete_profile(name: str, request: Request):
    store, settings = deps.store(request), deps.settings(request)
    profile = store.delete_profile(name)
    if profile is None:
        raise Problem(404, f"no face profile {name!r}")
    folder = safe_child_dir(settings, profile.folder)
    if folder is not None:
        shutil.rmtree(folder)
    return Response(status_code=204)


# --- the seed's paths -------------------------------------------------------------------------------------


@seed.post("/train-face", summary="Seed API: train a face profile (multipart)")
def train_face(
    request: Request,
    person_name: str = Form(..., max_length=64),
    training_steps: int = Form(300, ge=100, le=500),
    training_photos: list[UploadFile] = File(...),
):
    store, settings = deps.store(request), deps.settings(request)
    job = start_training(store, settings, name=person_name, steps=training_steps, uploads=training_photos)
    return {"job_id": job.id, "status": "queued", "person_name": person_name,
            "message": f"training {len(training_photos)} photos for {training_steps} steps"}


@seed.get("/training-status", summary="Seed API: trained profiles and running trainings")
def training_status(request: Request):
    store, settings = deps.store(request), deps.settings(request)
    profiles = store.list_profiles()
    active = store.active_jobs("train")
    return {
        "trained_people": [p.name for p in profiles],
        "profiles": [profile_document(p, settings.base_url) for p in profiles],
        "active_trainings": [{"job_id": j.id, "person_name": j.input.get("name"), "status": SEED_STATUS[j.status],
                              "progress": j.progress_percent} for j in active],
        "is_training": bool(active),
    }


@seed.get("/training-progress/{job_id}", summary="Seed API: a training's progress (real loss, no 'accuracy')")
def training_progress(job_id: str, request: Request):
    store = deps.store(request)
    job = _training(store, job_id)
    data = job.progress_data or {}
    return {
        "job_id": job.id,
        "person_name": job.input.get("name"),
        "status": SEED_STATUS[job.status],
        "progress": job.progress_percent,
        "current_step": job.progress_step,
        "total_steps": job.progress_total or job.input.get("steps"),
        "phase": job.progress_phase,
        "loss": data.get("loss"),
        "smoothed_loss": data.get("smoothed_loss"),
        "validation_loss": (job.output or {}).get("validation_loss"),
        "eta_seconds": data.get("eta_s"),
        "message": job.error or (job.logs.strip().splitlines() or [""])[-1],
    }
