"""The seed's endpoints as use cases: /generate, /status, and the seed's view of trainings.

Strength: the seed took image_strength 0.5–2.0 (default 1.9). LTX-2's conditioning strength is 0–1 and
frame 0 below ~0.5 no longer looks like the photo, so the seed's range maps linearly onto 0.5–1.0:
ltx = 0.5 + (seed − 0.5) / 3 (0.5 → 0.5, 1.9 → 0.967, 2.0 → 1.0).
"""

from __future__ import annotations

from ltx2.domain.errors import Problem
from ltx2.domain.inputs import GenerateInput
from ltx2.domain.status import JobStatus
from ltx2.services import files, predictions
from ltx2.services.trainings import profile_document
from ltx2.settings import Settings
from ltx2.store.jobs import JobStore

SEED_STATUS = {
    JobStatus.STARTING: "queued",
    JobStatus.PROCESSING: "processing",
    JobStatus.SUCCEEDED: "completed",
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "cancelled",
}


def seed_to_ltx_strength(value: float) -> float:
    return round(0.5 + (value - 0.5) / 3.0, 4)


def generate(
    store: JobStore,
    settings: Settings,
    *,
    text: str,
    reference_image,
    image_strength: float,
    random_avatar: bool,
    avatar_description: str | None,
    use_trained_profile: bool,
    trained_person_name: str | None,
    playback_speed: float,
    idempotency_key: str | None,
) -> dict:
    profile = None
    if use_trained_profile:
        profile = store.get_profile(trained_person_name or "")
        if profile is None:
            raise Problem(422, f"unknown face profile {trained_person_name!r} (see GET /training-status)")
    if not text.strip():
        raise Problem(422, "text is empty")
    inp = {
        "text": text,
        "speed": playback_speed,
        "avatar_description": avatar_description,
        "profile": profile.name if profile else None,
    }
    file_id, fresh = None, False
    if reference_image is not None and reference_image.filename and not random_avatar:
        file_id = files.add_image(
            store, settings, reference_image.file, reference_image.filename, field="reference_image"
        ).id
        reused = _photo_of_earlier_request(store, settings, idempotency_key, file_id)
        file_id, fresh = reused or file_id, reused is None
        inp.update(image=file_id, image_strength=seed_to_ltx_strength(image_strength))
    try:
        parsed = GenerateInput.model_validate(inp)
        job, _ = predictions.create(store, settings, parsed, webhook=None, events=None, idempotency_key=idempotency_key)
    except Exception:
        if fresh:  # a rejected request keeps nothing (an idempotency conflict included)
            files.drop(store, settings, file_id)
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
    files.drop(store, settings, file_id)
    return old.id


def status(store: JobStore, settings: Settings, job_id: str) -> dict:
    job = store.get(job_id)
    if job is None:
        raise Problem(404, f"no job {job_id}")
    out = job.output or {}
    video = out.get("video")
    data = job.progress_data or {}
    return {
        "job_id": job.id,
        "status": SEED_STATUS[job.status],
        "progress": job.progress_percent,
        # The same figures as the /v1 document's `progress` (one source: the job row the worker writes).
        "percent": float(job.progress_percent or 0),
        "phase": job.progress_phase,
        "phase_label": data.get("label", job.progress_phase),
        "step": job.progress_step,
        "total_steps": job.progress_total,
        "frames_decoded": data.get("frames_decoded"),
        "frames_encoded": data.get("frames_encoded"),
        "frames_total": data.get("frames_total"),
        "elapsed_s": data.get("elapsed_s"),
        "eta_s": data.get("eta_s"),
        "message": job.error or (job.logs.strip().splitlines() or [""])[-1],
        "queue_position": store.queue_position(job),
        "video_path": f"outputs/{video}" if video else None,
        "download_url": f"{settings.base_url}/download/{video}" if video else None,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
    }


def training_status(store: JobStore, settings: Settings) -> dict:
    profiles = store.list_profiles()
    active = store.active_jobs("train")
    return {
        "trained_people": [p.name for p in profiles],
        "profiles": [profile_document(p, settings.base_url) for p in profiles],
        "active_trainings": [
            {
                "job_id": j.id,
                "person_name": j.input.get("name"),
                "status": SEED_STATUS[j.status],
                "progress": j.progress_percent,
            }
            for j in active
        ],
        "is_training": bool(active),
    }


def training_progress(job) -> dict:
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
