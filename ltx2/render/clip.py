"""One clip from a user's request to files on disk: prompt → engine → one MP4 encode → thumbnail → metadata.

This is what the CLI (and later the worker) calls; the engine stays free of prompts and files.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
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
    return render_model(engine, spec, out_path, settings, on_progress, should_cancel)()


# Decoded frames a clip may hold in memory so that its decode can run ahead of the encoder (768x512x121: 143 MB;
# 20 s at 1024x576: 0.85 GB) and the model is free once the decode ends. A larger clip's decode waits for the
# encoder (two chunks in flight), so most of its encode happens inside the engine's lock.
MAX_BUFFERED_BYTES = 2 * 1024**3


def render_model(
    engine: Engine,
    spec: ClipSpec,
    out_path: Path,
    settings: Settings,
    on_progress: ProgressCallback | None = None,
    should_cancel: CancelCheck | None = None,
) -> Callable[[], RenderResult]:
    """A clip's model work now: generation, and the VAE decode feeding the encoder's thread chunk by chunk as
    each finishes (issue 19's overlap). Returns its tail (the rest of the encode, thumbnail, metadata), which
    needs no engine, so a worker can run it while the next job uses the model."""
    from ltx2.media import feed_encoder

    request = plan_request(spec, settings)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with engine.exclusive(f"the clip at {request.width}x{request.height}"):
        report = Reporter(on_progress, sum(n for _, n in engine.steps_plan(request)))
        report.plan(plan_of("clip", request))
        result = engine.generate(request, on_progress=report, should_cancel=should_cancel)
        report.audio_done()
        model = "tiny" if result.tiny else engine.model_info["family"]
        waveform = result.audio.waveform.float().cpu().numpy()
        encode_start = time.perf_counter()
        frames = request.num_frames
        fits = frames * request.width * request.height * 3 <= MAX_BUFFERED_BYTES
        encoded = feed_encoder(
            report.decoded(result.video, frames, should_cancel),
            request.fps,
            out_path,
            depth=None if fits else 2,
            audio=waveform,
            sample_rate=result.audio.sampling_rate,
            speed=spec.speed,
            preset=settings.encode_preset,
            metadata={"comment": json.dumps({"avatar_model": model, "seed": request.seed}), "avatar_model": model},
            on_frames=report.encoded(frames),
        )
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

    def tail() -> RenderResult:
        from ltx2.media import thumbnail_from_mp4

        encoded()
        finished = time.perf_counter()
        thumbnail = thumbnail_from_mp4(out_path, out_path.with_suffix(".jpg"))
        metadata["timings"] = {
            "generate_s": round(encode_start - started, 3),
            "decode_and_encode_s": round(finished - encode_start, 3),  # wall time, a wait for the tail included
            "total_s": round(finished - started, 3),
        }
        metadata["video"] = out_path.name
        metadata["thumbnail"] = thumbnail.name
        metadata_path = out_path.with_suffix(".json")
        tmp = metadata_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(metadata, indent=2) + "\n")
        os.replace(tmp, metadata_path)
        return RenderResult(out_path, thumbnail, metadata_path, metadata)

    return tail


def plan_of(kind: str, request: GenerationRequest, segments: int = 1) -> dict:
    """The fields of `ltx2.domain.progress.job_key`: what makes two jobs alike for an ETA."""
    return {
        "kind": kind,
        "mode": "audio" if request.audio is not None else request.mode,
        "width": request.width,
        "height": request.height,
        "frames": request.num_frames,
        "segments": segments,
    }


class Reporter:
    """The render path's progress: the engine's denoising steps, then frames decoded and frames encoded.

    Decode (this thread) and encode (the encoder's thread) report at once, so reports are serialised here;
    a listener never sees two at the same time. `unit`/`where` name a script's segment.
    """

    def __init__(
        self,
        on_progress: ProgressCallback | None,
        denoise_steps: int,
        unit: int = 0,
        where: str | None = None,
        data: dict | None = None,
    ):
        self.on_progress = on_progress
        self.denoise_steps = denoise_steps
        self.unit, self.where, self.data = unit, where, data
        self.lock = threading.Lock()

    def __call__(self, p) -> None:
        from dataclasses import replace

        if self.on_progress is None:
            return
        if self.where is not None or self.unit:
            p = replace(p, unit=self.unit, where=self.where)
        with self.lock:
            if self.data is None:
                self.on_progress(p)
            else:
                self.on_progress(p, self.data)

    def plan(self, plan: dict) -> None:
        from ltx2.engine.progress import Progress

        self(Progress("prepare", 0, 1, 0, self.denoise_steps, plan=plan))

    def audio_done(self) -> None:
        from ltx2.engine.progress import AUDIO_PHASE, Progress

        self(Progress(AUDIO_PHASE, 1, 1, self.denoise_steps, self.denoise_steps))

    def frames(self, phase: str, done: int, total: int) -> None:
        from ltx2.engine.progress import Progress

        self(Progress(phase, done, total, self.denoise_steps, self.denoise_steps, frames=True))

    def decoded(
        self, chunks: Iterable, total: int, should_cancel: CancelCheck | None = None, needed: int | None = None
    ) -> Iterator:
        """The lazy decode, reporting frames as each chunk comes out of the VAE; a cancel stops it between chunks.
        `needed`: the frames the reader will take (a script segment keeps fewer than the clip has; the VAE then
        stops early), which is what the decode phase counts up to."""
        from ltx2.domain.errors import JobCanceled

        total = min(total, needed or total)
        done = 0
        for chunk in chunks:
            done += len(chunk)
            self.frames("decode", min(done, total), total)
            yield chunk
            if should_cancel is not None and should_cancel():
                raise JobCanceled("canceled")

    def encoded(self, total: int, phase: str = "encode"):
        return lambda done: self.frames(phase, done, total)
