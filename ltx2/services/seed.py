"""The seed's endpoints as use cases: /generate, /status, and the seed's view of trainings.

Seed clients read the seed's field names, so every answer carries them beside today's richer fields. The one
seed field with no honest value, `current_accuracy` (the seed invented it), is answered as null: a face
profile's training has a loss, not an accuracy (see `loss` in /training-progress).

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
from ltx2.store.jobs import JobStore, as_utc

# The seed's answer to a started training (POST /train-face) and its word for "no training yet".
TRAINING_STARTED = "training_started"
NO_TRAINING = "idle"

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
    reference_image_url: str | None = None,
) -> dict:
    profile = None
    if use_trained_profile:
        profile = pick_profile(store, trained_person_name)
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
        reused = files.earlier_copy(store, settings, idempotency_key, "image", file_id)
        file_id, fresh = reused or file_id, reused is None
        inp.update(image=file_id, image_strength=seed_to_ltx_strength(image_strength))
    elif reference_image_url and not random_avatar:
        # Fetched through the guarded fetcher (or decoded from a data: URI) by predictions.create, like /v1 inputs.
        inp.update(image=reference_image_url, image_strength=seed_to_ltx_strength(image_strength))
    try:
        parsed = GenerateInput.model_validate(inp)
        job, _ = predictions.create(store, settings, parsed, webhook=None, events=None, idempotency_key=idempotency_key)
    except Exception as exc:
        if fresh:  # a rejected request keeps nothing (an idempotency conflict included)
            files.drop(store, settings, file_id)
        if isinstance(exc, Problem) and inp.get("image") == reference_image_url:  # name the field the client sent
            exc.detail = exc.detail.replace("input.image", "reference_image_url", 1)
        raise
    answer = {"job_id": job.id, "status": "queued"}
    if profile is not None:
        answer["profile"] = profile.name
        answer["message"] = f"queued with face profile {profile.name!r} (trigger word {profile.trigger!r})"
    return answer


def pick_profile(store: JobStore, name: str | None):
    """The named profile; without a name the only one, or the newest (the answer says which)."""
    if name:
        profile = store.get_profile(name)
        if profile is None:
            raise Problem(422, f"unknown face profile {name!r} (see GET /training-status)")
        return profile
    profiles = store.list_profiles()
    if not profiles:
        raise Problem(
            422,
            "use_trained_profile is set but there is no trained face profile yet: train one (POST /train-face) "
            "or send reference_image or random_avatar instead",
        )
    return profiles[-1]  # oldest first: the last is the newest


def status(store: JobStore, settings: Settings, job_id: str) -> dict:
    job, position = store.get_with_position(job_id)
    if job is None:
        raise Problem(404, f"no job {job_id}")
    out = job.output or {}
    video = out.get("video")
    data = job.progress_data or {}
    return {
        "job_id": job.id,
        "status": SEED_STATUS[job.status],
        "progress": float(job.progress_percent or 0),
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
        "queue_position": position,
        "video_path": f"outputs/{video}" if video else None,
        "download_url": f"{settings.base_url}/download/{video}" if video else None,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
    }


def training_status(store: JobStore, settings: Settings) -> dict:
    profiles = store.list_profiles()
    active = store.active_jobs("train")
    return {
        **_current_training(store, profiles, active),
        "current_accuracy": None,  # the seed's invented figure: no honest value (the loss is in /training-progress)
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


def _current_training(store: JobStore, profiles, active) -> dict:
    """The seed's single-training fields, of the running (else queued) training, else the latest one.

    A profile trained by `avatar train` has no job; a profile newer than the last server training (or one
    whose training job was deleted) is "the latest training": completed, its steps all done.
    """
    running = [j for j in active if j.status == JobStatus.PROCESSING] or sorted(active, key=lambda j: j.seq)
    job = running[0] if running else next(iter(store.list(kind="train", limit=1)[0]), None)
    newest = profiles[-1] if profiles else None
    if not running and newest is not None:
        finished = (job.completed_at or job.created_at) if job is not None else None
        if finished is None or as_utc(newest.created_at) > as_utc(finished):
            return {
                "has_training": True,
                "job_id": None,
                "person_name": newest.name,
                "status": SEED_STATUS[JobStatus.SUCCEEDED],
                "current_step": newest.steps,
                "training_steps": newest.steps,
                "progress": 100.0,
            }
    if job is None:
        return {
            "has_training": False,
            "job_id": None,
            "person_name": None,
            "status": NO_TRAINING,
            "current_step": 0,
            "training_steps": None,
            "progress": 0.0,
        }
    return {
        "has_training": True,
        "job_id": job.id,
        "person_name": job.input.get("name"),
        "status": SEED_STATUS[job.status],
        "current_step": job.progress_step,
        "training_steps": job.input.get("steps"),
        "progress": job.progress_percent,
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
        "training_steps": job.input.get("steps"),  # the seed's name: the steps asked for
        "phase": job.progress_phase,
        "loss": data.get("loss"),
        "smoothed_loss": data.get("smoothed_loss"),
        "validation_loss": (job.output or {}).get("validation_loss"),
        "eta_seconds": data.get("eta_s"),
        "message": job.error or (job.logs.strip().splitlines() or [""])[-1],
    }
