"""Job kinds the worker runs. Each takes the job row and returns its output document (file names, hashes)."""

from __future__ import annotations

from pathlib import Path

from ltx2.engine.errors import InvalidInputError, OutOfMemoryError
from ltx2.jobs.inputs import GenerateInput
from ltx2.jobs.store import JobStore
from ltx2.media import sha256_file
from ltx2.render import ClipSpec, render
from ltx2.settings import Settings


def _file_path(store: JobStore, settings: Settings, file_id: str | None) -> Path | None:
    if file_id is None:
        return None
    record = store.get_file(file_id)
    path = settings.uploads_dir / record.path if record else None
    if path is None or not path.is_file():
        raise InvalidInputError(f"uploaded file {file_id} no longer exists")
    return path


def run_generate(engine, settings: Settings, store: JobStore, job, on_progress, should_cancel) -> dict:
    import torch

    inp = GenerateInput.model_validate(job.input)
    spec = ClipSpec(
        text=inp.text,
        image=_file_path(store, settings, inp.image),
        image_strength=inp.image_strength,
        keyframe_anchors=inp.keyframe_anchors,
        audio=_file_path(store, settings, inp.audio),
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
    try:
        result = render(engine, spec, out, settings, on_progress=on_progress, should_cancel=should_cancel)
    except torch.OutOfMemoryError as exc:  # raised while the VAE decodes inside the encode
        raise OutOfMemoryError(f"the GPU ran out of memory decoding {inp.width}x{inp.height}: try smaller") from exc
    return {
        "video": result.video.name,
        "thumbnail": result.thumbnail.name,
        "metadata_file": result.metadata_path.name,
        "sha256": sha256_file(result.video),
        "size": result.video.stat().st_size,
        "metadata": result.metadata,
    }
