"""Face profiles: training intake (photos checked before anything is stored), profiles read and deleted.

Photos are checked before anything is stored (decoded, exactly one face, big enough), so a bad photo is a 422
naming it and the reason, and a rejected request keeps nothing.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

from pydantic import ValidationError

from ltx2.domain.errors import Problem
from ltx2.domain.inputs import PROFILE_PREVIEW, TrainInput
from ltx2.domain.limits import MAX_PHOTO_BYTES, MIN_PHOTOS
from ltx2.services import files
from ltx2.services.uploads import safe_child
from ltx2.settings import Settings
from ltx2.store.documents import iso
from ltx2.store.jobs import IdempotencyConflict, JobStore


def profile_document(profile, base_url: str) -> dict:
    return {
        "name": profile.name,
        "trigger": profile.trigger,
        "photos": len(profile.photos),
        "best_photo_url": f"{base_url}/v1/profiles/{profile.name}/photo",
        # The first frame of a short clip made with the profile when its training ended (404 for older profiles).
        "preview_url": f"{base_url}/v1/profiles/{profile.name}/preview",
        "steps": profile.steps,
        "final_loss": profile.final_loss,
        "validation_loss": profile.validation_loss,
        "training_job": profile.training_job,
        "created_at": iso(profile.created_at),
    }


def read_photos(uploads) -> list[tuple[str, bytes]]:
    """(name, bytes) of each uploaded photo, each capped while it is read."""
    photos = []
    for i, upload in enumerate(uploads):
        name = (upload.filename or f"photo {i + 1}")[:120]
        data = upload.file.read(MAX_PHOTO_BYTES + 1)
        if len(data) > MAX_PHOTO_BYTES:
            raise Problem(413, f"{name}: larger than {MAX_PHOTO_BYTES // 2**20} MB")
        photos.append((name, data))
    return photos


def start_training(
    store: JobStore, settings: Settings, *, name: str, steps: int, uploads, idempotency_key: str | None = None, **extra
):
    """Check everything, store the photos, queue the job. Nothing is kept if anything is wrong."""
    from ltx2.training.photos import PhotosRejected, check_count, validate_photos

    try:
        TrainInput(name=name, photos=["x"] * MIN_PHOTOS, steps=steps, **extra)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise Problem(422, f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}") from exc
    if store.get_profile(name) is not None:
        raise Problem(409, f"a face profile named {name!r} already exists: delete it first or pick another name")
    if any(job.input.get("name") == name for job in store.active_jobs("train")):
        raise Problem(409, f"a training for {name!r} is already queued or running")
    try:
        check_count(len(uploads))  # before a byte of any photo is read
        photos = read_photos(uploads)
        validate_photos(photos)
    except PhotosRejected as exc:
        raise Problem(
            422,
            str(exc),
            title="Photos rejected",
            extra={"problems": [{"photo": p.name, "reason": p.reason} for p in exc.problems]},
        ) from exc
    file_ids = []
    try:
        for photo_name, data in photos:
            record = files.add_image(store, settings, io.BytesIO(data), photo_name, field="", purpose="training")
            file_ids.append(record.id)
        inp = TrainInput(name=name, photos=file_ids, steps=steps, **extra)
        job, _ = store.create("train", inp.model_dump(), idempotency_key=idempotency_key)
    except Exception as exc:
        for file_id in file_ids:
            files.drop(store, settings, file_id)
        if isinstance(exc, IdempotencyConflict):
            raise Problem(
                409,
                "this Idempotency-Key was already used with a different request",
                extra={"existing": exc.existing.id},
            ) from exc
        raise
    return job


def get_profile(store: JobStore, name: str):
    profile = store.get_profile(name)
    if profile is None:
        raise Problem(404, f"no face profile {name!r}")
    return profile


def profile_folder(settings: Settings, folder: str) -> Path | None:
    if not re.fullmatch(r"[0-9a-f]{20}", folder or ""):
        return None
    path = settings.profiles_dir / folder
    return path if path.is_dir() else None


def profile_photo(store: JobStore, settings: Settings, name: str) -> Path:
    profile = get_profile(store, name)
    folder = profile_folder(settings, profile.folder)
    path = safe_child(folder, profile.best_photo) if folder else None
    if path is None:
        raise Problem(404, f"the photo of profile {name!r} is missing")
    return path


def profile_preview(store: JobStore, settings: Settings, name: str) -> Path:
    profile = get_profile(store, name)
    folder = profile_folder(settings, profile.folder)
    path = safe_child(folder, PROFILE_PREVIEW) if folder else None
    if path is None or not path.is_file():
        raise Problem(404, f"profile {name!r} has no preview frame (it was trained before previews were made)")
    return path


def delete_profile(store: JobStore, settings: Settings, name: str) -> None:
    """The row, its LoRA, its photos and the uploads it was trained from unless another job or profile uses one
    (faces must not linger)."""
    profile, released = store.delete_profile(name)
    if profile is None:
        raise Problem(404, f"no face profile {name!r}")
    folder = profile_folder(settings, profile.folder)
    if folder is not None:
        shutil.rmtree(folder)
    files.remove_bytes(settings, released)
