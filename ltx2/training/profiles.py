"""A trained face becomes a profile the same way whoever trains it (the worker's `train` job or `avatar train`):
LoRA, photos and a preview frame (made with the new LoRA and trigger word) into a staging folder, renamed to `<profiles>/<folder id>/`, and only then the `profiles` row.
A cancel, crash or a name taken meanwhile never leaves a half profile."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence

from ltx2.domain.errors import InvalidInputError
from ltx2.domain.inputs import trigger_for
from ltx2.render.preview import PREVIEW_FILE, render_preview
from ltx2.settings import Settings
from ltx2.store.jobs import JobStore
from ltx2.store.models import Profile, utcnow
from ltx2.training.lora import TrainProgress, TrainResult, train_face_lora
from ltx2.training.photos import FacePhoto

LORA_FILE = "lora.safetensors"


def train_profile(
    engine,
    settings: Settings,
    store: JobStore,
    photos: Sequence[FacePhoto],
    *,
    name: str,
    folder_id: str,
    training_job: str | None = None,
    on_progress: Callable | None = None,
    should_cancel: Callable[[], bool] | None = None,
    **train_args,
) -> tuple[Profile, TrainResult]:
    """Train on checked `photos` and store the result as profile `name` (trigger word `trigger_for(name)`).

    `train_args` go to `train_face_lora` (steps, rank, alpha, learning_rate, resolution, seed, ...).
    Raises InvalidInputError when a profile of that name appeared while this one trained.
    """
    staging = settings.profiles_dir / f".staging-{folder_id}"
    final = settings.profiles_dir / folder_id
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        result = train_face_lora(
            engine,
            photos,
            trigger=trigger_for(name),
            out_path=staging / LORA_FILE,
            on_progress=on_progress,
            should_cancel=should_cancel,
            **train_args,
        )
        # The preview is part of the profile (the studio shows it on the card), so it is staged with it.
        if on_progress is not None:
            on_progress(TrainProgress("preview", 0, 1, result.final_loss))
        trigger = trigger_for(name)
        seed = train_args.get("seed", 0)
        render_preview(engine, staging / LORA_FILE, trigger, staging / PREVIEW_FILE, settings, seed, should_cancel)
        if on_progress is not None:
            on_progress(TrainProgress("preview", 1, 1, result.final_loss))
        names = []
        for i, photo in enumerate(photos):
            photo_name = f"photo-{i + 1}.png"
            photo.full.save(staging / photo_name)
            names.append(photo_name)
        staging.replace(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    profile = Profile(
        name=name,
        trigger=trigger_for(name),
        folder=final.name,
        lora=LORA_FILE,
        photos=names,
        best_photo=names[result.best_photo],
        steps=result.steps,
        final_loss=result.final_loss,
        validation_loss=result.validation_loss,
        training_job=training_job,
        created_at=utcnow(),
    )
    if not store.add_profile(profile):
        shutil.rmtree(final, ignore_errors=True)
        raise InvalidInputError(f"a face profile named {name!r} was created while this one trained")
    return profile, result
