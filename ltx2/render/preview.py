"""A face profile's preview: the first frame of a short clip made with its LoRA and trigger word, no photo.

Rendered by the worker when a training ends, so the studio shows what the profile makes before anyone spends a
full clip on it. Frame 0 is generated from the text alone (no reference image conditions it): it shows the
LoRA's face, not one of the training photos.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ltx2.domain.inputs import PROFILE_PREVIEW
from ltx2.render.clip import ClipSpec, plan_request

PREVIEW_TEXT = "Hello, this is my face profile."
PREVIEW_FILE = PROFILE_PREVIEW
PREVIEW_FRAMES = 9  # LTX-2's shortest clip


def render_preview(engine, lora: Path, trigger: str, out: Path, settings, seed: int = 42, should_cancel=None) -> Path:
    from ltx2.media import write_thumbnail

    side = 128 if engine.weights.tiny else 512  # the tiny checkpoint on a CPU: seconds, not minutes
    spec = ClipSpec(text=PREVIEW_TEXT, lora=lora, trigger_token=trigger, seed=seed, width=side, height=side)
    request = replace(plan_request(spec, settings), num_frames=PREVIEW_FRAMES)
    with engine.exclusive("the profile preview"):
        result = engine.generate(request, should_cancel=should_cancel)
        chunks = iter(result.video)
        try:
            first = next(chunks)[0]  # only the first temporal chunk is decoded
        finally:
            chunks.close()
    return write_thumbnail(first, out)
