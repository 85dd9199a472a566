"""One clip from a user's request to files on disk: prompt → engine → one MP4 encode → thumbnail → metadata.

This is what the CLI (and later the worker) calls; the engine stays free of prompts and files.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ltx2.domain.errors import InvalidInputError
from ltx2.domain.limits import MAX_SPEED, MIN_SPEED
from ltx2.domain.prompts import DEFAULT_NEGATIVE_PROMPT, build_prompt, frames_for_seconds, plan_clip

if TYPE_CHECKING:
    from ltx2.engine.pipelines import Engine, GenerationRequest
    from ltx2.engine.progress import CancelCheck, ProgressCallback
    from ltx2.settings import Settings


@dataclass
class ClipSpec:
    """What a user asks for, in their terms (seconds, speed, a description), before it becomes a request."""

    text: str
    image: Path | None = None
    image_strength: float = 1.0
    keyframe_anchors: int = 0
    first_frame: Path | None = None  # continuity: conditions frame 0; the reference image then anchors later frames
    audio: Path | None = None
    audio_start: float = 0.0
    lora: Path | None = None
    lora_strength: float = 1.0
    trigger_token: str | None = None
    avatar_description: str | None = None
    seed: int = 42
    width: int = 768
    height: int = 512
    seconds: float | None = None  # None: from the speech estimate (text) or the recording's length (audio)
    fps: float | None = None
    speed: float = 1.0
    mode: str = "distilled"
    steps: int | None = None


@dataclass
class RenderResult:
    video: Path
    thumbnail: Path
    metadata_path: Path
    metadata: dict = field(default_factory=dict)


def plan_request(spec: ClipSpec, settings: Settings) -> GenerationRequest:
    """Turn a ClipSpec into the engine's request; raises InvalidInputError for what cannot be made."""
    from ltx2.engine.pipelines import GenerationRequest

    if not MIN_SPEED <= spec.speed <= MAX_SPEED:
        raise InvalidInputError(f"playback speed {spec.speed} is outside {MIN_SPEED}–{MAX_SPEED}")
    fps = spec.fps or settings.default_fps
    if spec.audio is not None:
        seconds = spec.seconds or audio_seconds(Path(spec.audio))
        seconds = min(seconds, settings.max_seconds)
        num_frames = frames_for_seconds(seconds, fps)
    elif spec.seconds is not None:
        if not 0 < spec.seconds <= settings.max_seconds:
            raise InvalidInputError(f"seconds must lie in (0, {settings.max_seconds:g}]")
        num_frames = frames_for_seconds(spec.seconds, fps)
    else:
        try:
            num_frames = plan_clip(
                spec.text, fps=fps, max_seconds=settings.max_seconds, words_per_minute=settings.words_per_minute
            ).num_frames
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
    prompt = build_prompt(
        spec.text,
        avatar_description=spec.avatar_description,
        has_reference_image=spec.image is not None,
        trigger_token=spec.trigger_token,
    )
    return GenerationRequest(
        prompt=prompt,
        negative_prompt=DEFAULT_NEGATIVE_PROMPT,
        seed=spec.seed,
        width=spec.width,
        height=spec.height,
        num_frames=num_frames,
        fps=fps,
        mode=spec.mode,  # type: ignore[arg-type]
        image=spec.image,
        image_strength=spec.image_strength,
        first_frame=spec.first_frame,
        keyframe_anchors=spec.keyframe_anchors,
        audio=spec.audio,
        audio_start=spec.audio_start,
        lora=spec.lora,
        lora_strength=spec.lora_strength,
        steps=spec.steps,
    )


def audio_seconds(path: Path) -> float:
    from ltx2.media import MediaError, probe

    try:
        info = probe(path)
    except MediaError as exc:
        raise InvalidInputError(str(exc)) from exc
    if not info.has_audio or not info.audio_duration:
        raise InvalidInputError(f"{path.name} has no audio stream")
    return float(info.audio_duration)


def render(
    engine: Engine,
    spec: ClipSpec,
    out_path: Path,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> RenderResult:
    request = plan_request(spec, settings)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with engine.exclusive(f"the clip at {request.width}x{request.height}"):
        result = engine.generate(request, on_progress=on_progress, should_cancel=should_cancel)
        # The encode drives the lazy VAE decode, so it runs while the engine is still ours.
        waveform = result.audio.waveform.float().cpu().numpy()
        return _finish(engine, spec, request, result, waveform, out_path, settings, started, time.perf_counter())


# Decoded frames a clip may hold in memory to hand its encode to a thread (768x512x121: 143 MB; 20 s at
# 1024x576: 0.85 GB). A larger clip encodes while it decodes, inside the engine's lock, as render() does.
MAX_BUFFERED_BYTES = 2 * 1024**3


def render_model(
    engine: Engine,
    spec: ClipSpec,
    out_path: Path,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> Callable[[], RenderResult]:
    """A clip's model work (generation and the VAE decode) now; returns its CPU tail (encode, thumbnail,
    metadata), which needs no engine, so a worker can run it while the next job uses the model."""
    request = plan_request(spec, settings)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with engine.exclusive(f"the clip at {request.width}x{request.height}"):
        result = engine.generate(request, on_progress=on_progress, should_cancel=should_cancel)
        waveform = result.audio.waveform.float().cpu().numpy()
        if request.num_frames * request.width * request.height * 3 > MAX_BUFFERED_BYTES:
            done = _finish(engine, spec, request, result, waveform, out_path, settings, started, time.perf_counter())
            return lambda: done
        decode_start = time.perf_counter()
        # In host memory before the lock is released: the tail must not touch the device the next job uses.
        result.video = iter([chunk.cpu() for chunk in result.video])
        decoded = time.perf_counter()

    def tail() -> RenderResult:
        return _finish(engine, spec, request, result, waveform, out_path, settings, started, decode_start, decoded)

    return tail


def _finish(
    engine,
    spec: ClipSpec,
    request: GenerationRequest,
    result,
    waveform,
    out_path: Path,
    settings: Settings,
    started: float,
    encode_start: float,
    decoded: float | None = None,
) -> RenderResult:
    from ltx2.media import encode_mp4, thumbnail_from_mp4

    tail_start = time.perf_counter()
    model = "tiny" if result.tiny else engine.model_info["family"]
    metadata = {
        "model": model,
        "tiny_checkpoint": result.tiny,
        "pipeline": result.pipeline,
        "prompt": request.prompt,
        "text": spec.text,
        "seed": request.seed,
        "width": request.width,
        "height": request.height,
        "num_frames": request.num_frames,
        "fps": request.fps,
        "speed": spec.speed,
        "mode": request.mode,
        "reference_image": bool(request.image),
        "image_strength": request.image_strength if request.image else None,
        "keyframe_anchors": request.keyframe_anchors,
        "audio_input": bool(request.audio),
        "lora": Path(request.lora).name if request.lora else None,
    }
    encode_mp4(
        result.video,
        request.fps,
        out_path,
        audio=waveform,
        sample_rate=result.audio.sampling_rate,
        speed=spec.speed,
        preset=settings.encode_preset,
        metadata={"comment": json.dumps({"avatar_model": model, "seed": request.seed}), "avatar_model": model},
    )
    finished = time.perf_counter()
    thumbnail = thumbnail_from_mp4(out_path, out_path.with_suffix(".jpg"))
    if decoded is None:
        decode_and_encode = finished - encode_start
    else:  # a deferred tail: its decode ran in the lock, and its wait for the tail thread is not work
        decode_and_encode = (decoded - encode_start) + (finished - tail_start)
    metadata["timings"] = {
        "generate_s": round(encode_start - started, 3),
        "decode_and_encode_s": round(decode_and_encode, 3),
        "total_s": round(finished - started, 3),
    }
    metadata["video"] = out_path.name
    metadata["thumbnail"] = thumbnail.name
    metadata_path = out_path.with_suffix(".json")
    tmp = metadata_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metadata, indent=2) + "\n")
    os.replace(tmp, metadata_path)
    return RenderResult(out_path, thumbnail, metadata_path, metadata)
