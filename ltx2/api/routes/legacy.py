"""The seed's endpoints, same paths and field names, as thin adapters over the job store.

Strength: the seed took image_strength 0.5–2.0 (default 1.9). LTX-2's conditioning strength is 0–1 and
frame 0 below ~0.5 no longer looks like the photo, so the seed's range maps linearly onto 0.5–1.0:
ltx = 0.5 + (seed − 0.5) / 3 (0.5 → 0.5, 1.9 → 0.967, 2.0 → 1.0).
"""

from __future__ import annotations

import shutil
import time

from fastapi import APIRouter, File, Form, Header, Request, UploadFile

from ltx2.api import deps
from ltx2.api.errors import Problem
from ltx2.api.routes.files import upload_limits
from ltx2.api.routes.predictions import check_input, create_job, remove_outputs
from ltx2.api.uploads import UploadError, store_image
from ltx2.store import lifecycle
from ltx2.domain.inputs import GenerateInput
from ltx2.domain.limits import MAX_SPEED, MIN_SPEED
from ltx2.store.models import CANCELED, FAILED, PROCESSING, STARTING, SUCCEEDED, TERMINAL
from ltx2.settings import Settings

router = APIRouter(tags=["seed API"])

SEED_STATUS = {STARTING: "queued", PROCESSING: "processing", SUCCEEDED: "completed", FAILED: "failed",
               CANCELED: "cancelled"}
RESET_WORD = "RESET"


def seed_to_ltx_strength(value: float) -> float:
    return round(0.5 + (value - 0.5) / 3.0, 4)


@router.post("/generate", summary="Seed API: queue a clip (multipart form)")
def generate(
    request: Request,
    text: str = Form(..., max_length=5000),
    reference_image: UploadFile | None = File(default=None),
    image_strength: float = Form(1.9, ge=0.5, le=2.0),
    random_avatar: bool = Form(False),
    avatar_description: str | None = Form(None, max_length=1000),
    use_trained_profile: bool = Form(False),
    trained_person_name: str | None = Form(None, max_length=100),
    fresh_start_mode: bool = Form(False, description="Accepted for compatibility: every job starts clean."),
    playback_speed: float = Form(1.25, ge=MIN_SPEED, le=MAX_SPEED),
    idempotency_key: str | None = Header(default=None, max_length=255),
):
    store, settings = deps.store(request), deps.settings(request)
    profile = None
    if use_trained_profile:
        profile = store.get_profile(trained_person_name or "")
        if profile is None:
            raise Problem(422, f"unknown face profile {trained_person_name!r} (see GET /training-status)")
    if not text.strip():
        raise Problem(422, "text is empty")
    inp = {"text": text, "speed": playback_speed, "avatar_description": avatar_description,
           "profile": profile.name if profile else None}
    file_id, fresh = None, False
    if reference_image is not None and reference_image.filename and not random_avatar:
        file_id = _store_reference(store, settings, reference_image)
        reused = _photo_of_earlier_request(store, settings, idempotency_key, file_id)
        file_id, fresh = reused or file_id, reused is None
        inp.update(image=file_id, image_strength=seed_to_ltx_strength(image_strength))
    try:
        parsed = GenerateInput.model_validate(inp)
        check_input(store, settings, parsed)
        job, _ = create_job(store, settings, "generate", parsed.model_dump(), webhook=None, events=None,
                            idempotency_key=idempotency_key)
    except Exception:
        if fresh:  # a rejected request keeps nothing (an idempotency conflict included)
            _drop_file(store, settings, file_id)
        raise
    return {"job_id": job.id, "status": "queued"}


def _photo_of_earlier_request(store, settings: Settings, idempotency_key: str | None, file_id: str) -> str | None:
    """A repeat under the same Idempotency-Key with the same photo reuses the first request's file.

    Every upload gets a new id, so without this the repeat's input would never equal the first one and an
    idempotent retry would be answered 409. The new copy is dropped; returns the earlier file's id.
    """
    earlier = store.by_idempotency_key(idempotency_key) if idempotency_key else None
    earlier_id = (earlier.input or {}).get("image") if earlier is not None else None
    old = store.get_file(earlier_id) if earlier_id else None
    new = store.get_file(file_id)
    if old is None or new is None or old.sha256 != new.sha256 or old.kind != new.kind:
        return None
    _drop_file(store, settings, file_id)
    return old.id


def _store_reference(store, settings: Settings, upload: UploadFile) -> str:
    try:
        stored = store_image(upload.file, settings.uploads_dir, upload_limits(settings))
    except UploadError as exc:
        raise Problem(exc.status, f"reference_image: {exc.detail}", title=exc.title) from exc
    record = store.add_file(kind="image", content_type=stored.content_type,
                            path=stored.path.relative_to(settings.uploads_dir).as_posix(), sha256=stored.sha256,
                            size=stored.size, original_name=upload.filename,
                            meta={"width": stored.width, "height": stored.height})
    return record.id


def _drop_file(store, settings: Settings, file_id: str) -> None:
    record = store.get_file(file_id)
    if record is not None:
        (settings.uploads_dir / record.path).unlink(missing_ok=True)
        store.delete_file(file_id)


@router.get("/status/{job_id}", summary="Seed API: a job's status")
def status(job_id: str, request: Request):
    store, settings = deps.store(request), deps.settings(request)
    job = store.get(job_id)
    if job is None:
        raise Problem(404, f"no job {job_id}")
    out = job.output or {}
    video = out.get("video")
    return {
        "job_id": job.id,
        "status": SEED_STATUS[job.status],
        "progress": job.progress_percent,
        "phase": job.progress_phase,
        "message": job.error or (job.logs.strip().splitlines() or [""])[-1],
        "queue_position": store.queue_position(job),
        "video_path": f"outputs/{video}" if video else None,
        "download_url": f"{settings.base_url}/download/{video}" if video else None,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
    }


def _dir_usage(path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
    return len(files), sum(p.stat().st_size for p in files)


@router.get("/workspace-status", summary="Seed API: what the workspace holds")
def workspace_status(request: Request):
    store, settings = deps.store(request), deps.settings(request)
    videos = sorted(settings.outputs_dir.glob("*.mp4")) if settings.outputs_dir.exists() else []
    temp_n, temp_b = _dir_usage(settings.temp_dir)
    up_n, up_b = _dir_usage(settings.uploads_dir)
    out_b = sum(p.stat().st_size for p in settings.outputs_dir.glob("*") if p.is_file()) \
        if settings.outputs_dir.exists() else 0
    disk = shutil.disk_usage(settings.outputs_dir if settings.outputs_dir.exists() else settings.outputs_dir.parent)
    return {
        "videos": len(videos),
        "outputs_bytes": out_b,
        "temp_files": temp_n,
        "temp_bytes": temp_b,
        "uploads": up_n,
        "uploads_bytes": up_b,
        "jobs": store.counts(),
        "disk_free_bytes": disk.free,
    }


@router.post("/clean-workspace", summary="Seed API: empty the temp folder (and, if asked, finished outputs)")
def clean_workspace(request: Request, include_outputs: bool = Form(False)):
    store, settings = deps.store(request), deps.settings(request)
    removed = _empty_dir(settings.temp_dir)
    deleted_jobs = 0
    if include_outputs:
        cursor = None
        while True:
            jobs, cursor = store.list(status=TERMINAL, cursor=cursor, limit=200)
            for job in jobs:
                if store.delete(job.id):
                    deleted_jobs += 1
                    removed += remove_outputs(settings, job)
            if cursor is None:
                break
    return {"status": "cleaned", "files_removed": removed, "jobs_deleted": deleted_jobs}


def _empty_dir(path) -> int:
    """Delete what is inside `path` (never `path` itself, never following links out of it)."""
    if not path.exists():
        return 0
    removed = 0
    for child in path.iterdir():
        if child.name == ".gitkeep":
            continue
        if child.is_dir() and not child.is_symlink():
            removed += sum(1 for p in child.rglob("*") if p.is_file())
            shutil.rmtree(child)
        else:
            child.unlink(missing_ok=True)
            removed += 1
    return removed


@router.post("/master-reset", summary="Seed API: delete every job, upload and output (needs confirm=RESET)")
def master_reset(request: Request, confirm: str = Form("", description=f"Type {RESET_WORD} to confirm")):
    store, settings = deps.store(request), deps.settings(request)
    if confirm != RESET_WORD:
        raise Problem(400, f"master reset deletes every job, upload and video: send confirm={RESET_WORD}")
    # Stop work first: waiting jobs are canceled at once, running ones within a step.
    active, _ = store.list(status=(STARTING, PROCESSING), limit=10_000)
    for job in active:
        lifecycle.cancel(store, job.id)
    deadline = time.monotonic() + 30
    while store.list(status=(PROCESSING,), limit=1)[0] and time.monotonic() < deadline:
        time.sleep(0.2)
    if store.list(status=(PROCESSING,), limit=1)[0]:
        raise Problem(409, "a job is still running and did not stop within 30 s; nothing was deleted")
    store.clear_all()
    # Profile rows went with clear_all(); their photos and LoRA weights go too (faces must not linger).
    removed = sum(_empty_dir(p) for p in (settings.uploads_dir, settings.profiles_dir, settings.temp_dir,
                                          settings.state_dir / "segments"))
    for path in settings.outputs_dir.glob("*"):
        if path.is_file() and path.suffix in (".mp4", ".jpg", ".json", ".srt", ".vtt"):
            path.unlink()
            removed += 1
    return {"status": "reset", "canceled_jobs": len(active), "files_removed": removed}
