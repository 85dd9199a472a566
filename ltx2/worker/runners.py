"""Job kinds the worker runs. Each takes the job row and returns its output document (file names, hashes)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ltx2.domain.errors import InvalidInputError
from ltx2.domain.inputs import GenerateInput
from ltx2.domain.policy import draft_size, is_script, segment_seconds
from ltx2.media import sha256_file
from ltx2.render import ClipSpec, audio_seconds, render
from ltx2.render.script import (
    PlannedSegment,
    ScriptSpec,
    link_segments,
    plan_script,
    render_script,
    segment_folder,
    segment_seed,
)
from ltx2.settings import Settings
from ltx2.store.jobs import JobStore


def _file_path(store: JobStore, settings: Settings, file_id: str | None) -> Path | None:
    if file_id is None:
        return None
    record = store.get_file(file_id)
    path = settings.uploads_dir / record.path if record else None
    if path is None or not path.is_file():
        raise InvalidInputError(f"uploaded file {file_id} no longer exists")
    return path


def run_generate(engine, settings: Settings, store: JobStore, job, on_progress, should_cancel) -> dict:
    inp = GenerateInput.model_validate(job.input)
    image = _file_path(store, settings, inp.image)
    lora = trigger = None
    if inp.profile is not None:
        profile = store.get_profile(inp.profile)
        folder = settings.profiles_dir / profile.folder if profile else None
        if folder is None or not (folder / profile.lora).is_file():
            raise InvalidInputError(f"face profile {inp.profile!r} no longer exists")
        lora, trigger = folder / profile.lora, profile.trigger
        if image is None:  # the profile's best photo holds the face unless the request brings its own
            image = folder / profile.best_photo
    audio = _file_path(store, settings, inp.audio)
    spec = ClipSpec(
        text=inp.text,
        image=image,
        lora=lora,
        lora_strength=inp.profile_strength,
        trigger_token=trigger,
        image_strength=inp.image_strength,
        keyframe_anchors=inp.keyframe_anchors,
        audio=audio,
        avatar_description=inp.avatar_description,
        seed=inp.seed,
        width=inp.width,
        height=inp.height,
        seconds=inp.seconds,
        fps=inp.fps,
        speed=inp.speed,
        mode=inp.mode,
        steps=inp.steps,
    )
    out = settings.outputs_dir / f"{job.id}.mp4"
    recording = audio_seconds(audio) if audio is not None else None
    if is_script(inp, settings, recording):
        return _run_script(engine, settings, store, job, inp, spec, out, on_progress, should_cancel)
    if inp.draft:
        spec.width, spec.height = draft_size(inp.width, inp.height)
        spec.mode = "distilled"
    return _output(render(engine, spec, out, settings, on_progress=on_progress, should_cancel=should_cancel))


def _output(result, **extra) -> dict:
    return {
        "video": result.video.name,
        "thumbnail": result.thumbnail.name,
        "metadata_file": result.metadata_path.name,
        "sha256": sha256_file(result.video),
        "size": result.video.stat().st_size,
        **extra,
        "metadata": result.metadata,
    }


def _run_script(
    engine,
    settings: Settings,
    store: JobStore,
    job,
    inp: GenerateInput,
    clip: ClipSpec,
    out: Path,
    on_progress,
    should_cancel,
) -> dict:
    """Several segments, one video. The segment folder outlives a lost worker (the requeued job resumes from
    it); a cancel or a failure removes it."""
    import shutil

    from ltx2.domain.errors import JobCanceled

    spec = ScriptSpec(
        clip=clip,
        text=inp.text,
        segment_seconds=segment_seconds(inp, settings),
        crossfade=inp.crossfade,
        captions=tuple(dict.fromkeys(inp.captions)),
        burn_captions=inp.burn_captions,
        draft=inp.draft,
    )
    folder = segment_folder(settings, job.id)
    if inp.source is None:
        segments = plan_script(spec, settings)
    else:
        segments = _derived_plan(store, settings, inp, spec, folder)
    try:
        result = render_script(
            engine, spec, segments, folder, out, settings, on_progress=on_progress, should_cancel=should_cancel
        )
    except JobCanceled:
        if store.cancel_requested(job.id):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    except Exception:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return _output(result, captions={fmt: path.name for fmt, path in result.captions.items()}, segments=result.segments)


def _derived_plan(
    store: JobStore, settings: Settings, inp: GenerateInput, spec: ScriptSpec, folder: Path
) -> list[PlannedSegment]:
    """The segments of the prediction this job retakes or finalizes: same texts, seeds and audio pieces.

    A retake changes one segment (new take, so a new seed; optionally new text) and links the other segments'
    files into this job's folder, so they are reused byte for byte.
    """
    source = inp.source
    parent = store.get(source.prediction)
    docs = (parent.output or {}).get("segments") if parent is not None else None
    if not docs:
        raise InvalidInputError(f"prediction {source.prediction} has no segments to reuse (was it deleted?)")
    segments = [
        PlannedSegment(d["number"] - 1, d["text"], d["seed"], d["take"], d.get("audio_start"), d.get("seconds"))
        for d in docs
    ]
    if source.action == "finalize":
        return segments
    index = source.segment - 1
    if index >= len(segments):
        raise InvalidInputError(f"prediction {source.prediction} has {len(segments)} segments, not {source.segment}")
    take = segments[index].take + 1
    segments[index] = replace(
        segments[index], text=source.text or segments[index].text, take=take, seed=segment_seed(inp.seed, index, take)
    )
    link_segments(
        segment_folder(settings, source.prediction), folder, keep=[s.index for s in segments if s.index != index]
    )
    return segments


CURVE_POINTS = 300  # the loss curve kept in the job for the studio's chart


def run_train(engine, settings: Settings, store: JobStore, job, on_progress, should_cancel) -> dict:
    """Train a face profile. The profile exists only once everything is written: a cancel, crash or restart
    leaves no half profile (the staging folder is removed, and a rerun starts clean)."""
    import shutil

    from ltx2.domain.inputs import TrainInput, trigger_for
    from ltx2.render.preview import PREVIEW_FILE, render_preview
    from ltx2.store.models import Profile, utcnow
    from ltx2.training.lora import TrainProgress, train_face_lora
    from ltx2.training.photos import PhotosRejected, validate_photos

    inp = TrainInput.model_validate(job.input)
    sources = [(store.get_file(fid).original_name or fid, _file_path(store, settings, fid)) for fid in inp.photos]
    try:
        photos = validate_photos(sources)
    except PhotosRejected as exc:
        raise InvalidInputError(str(exc)) from exc
    staging = settings.profiles_dir / f".staging-{job.id}"
    final = settings.profiles_dir / job.id
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    curve: list[list[float]] = []
    try:

        def progress(p) -> None:
            if p.phase == "train" and p.loss is not None:
                curve.append([p.step, round(float(p.loss), 5)])
                if len(curve) > CURVE_POINTS:  # keep every other point of the older half
                    del curve[1 : len(curve) // 2 : 2]
            on_progress(p, {"loss": p.loss, "smoothed_loss": p.smoothed_loss, "eta_s": p.eta_s, "curve": list(curve)})

        result = train_face_lora(
            engine,
            photos,
            trigger=trigger_for(inp.name),
            out_path=staging / "lora.safetensors",
            steps=inp.steps,
            rank=inp.rank,
            alpha=inp.alpha,
            learning_rate=inp.learning_rate,
            resolution=inp.resolution,
            seed=inp.seed,
            checkpoint_every=inp.checkpoint_every,
            on_progress=progress,
            should_cancel=should_cancel,
        )
        # The profile's preview frame, made with the new LoRA and trigger: part of the profile, so staged with it.
        progress(TrainProgress("preview", 0, 1, result.final_loss))
        render_preview(
            engine,
            staging / "lora.safetensors",
            trigger_for(inp.name),
            staging / PREVIEW_FILE,
            settings,
            inp.seed,
            should_cancel,
        )
        progress(TrainProgress("preview", 1, 1, result.final_loss))
        names = []
        for i, photo in enumerate(photos):
            name = f"photo-{i + 1}.png"
            photo.full.save(staging / name)
            names.append(name)
        staging.replace(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    profile = Profile(
        name=inp.name,
        trigger=trigger_for(inp.name),
        folder=final.name,
        lora="lora.safetensors",
        photos=names,
        best_photo=names[result.best_photo],
        steps=result.steps,
        final_loss=result.final_loss,
        validation_loss=result.validation_loss,
        training_job=job.id,
        created_at=utcnow(),
    )
    if not store.add_profile(profile):
        shutil.rmtree(final, ignore_errors=True)
        raise InvalidInputError(f"a face profile named {inp.name!r} was created while this one trained")
    return {
        "profile": inp.name,
        "trigger": profile.trigger,
        "steps": result.steps,
        "first_loss": result.first_loss_mean,
        "final_loss": result.final_loss,
        "validation_loss": result.validation_loss,
        "seconds": round(result.seconds, 2),
        "best_photo": profile.best_photo,
    }
