"""A long script as one video: plan segments, generate each with continuity, stitch once, caption.

Segments are generated in order into a folder with a manifest written after each one, so a job requeued after
a lost worker resumes at the first missing segment, and a retake reuses every other segment's files unchanged.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ltx2.domain.errors import InvalidInputError, JobCanceled
from ltx2.domain.policy import draft_size
from ltx2.domain.prompts import EmptyTextError, estimate_speech_seconds
from ltx2.domain.split import ScriptTooLongError, split_script
from ltx2.render.clip import ClipSpec, Reporter, audio_seconds, plan_of, plan_request

if TYPE_CHECKING:
    from ltx2.engine.pipelines import Engine
    from ltx2.engine.progress import CancelCheck
    from ltx2.settings import Settings

MANIFEST = "manifest.json"


def segment_seed(seed: int, index: int, take: int) -> int:
    """Every segment and every retake gets its own seed, all derived from the job's seed."""
    return (seed + 7919 * index + 104_729 * (take - 1)) % 2**31


@dataclass
class PlannedSegment:
    index: int
    text: str
    seed: int
    take: int = 1
    audio_start: float | None = None  # own-voice mode: where in the recording this segment starts
    seconds: float | None = None  # own-voice mode: how long it is
    frames: int | None = None  # kept frames, once generated

    def key(self) -> dict:
        """What decides the segment's pixels: a stored segment is reused only if this matches."""
        return {k: v for k, v in asdict(self).items() if k not in ("frames",)}


@dataclass
class ScriptSpec:
    clip: ClipSpec  # everything shared by the segments: face, profile, size, seed, speed, mode
    text: str
    segment_seconds: float
    crossfade: float = 0.0  # seconds
    captions: tuple[str, ...] = ()
    burn_captions: bool = False
    draft: bool = False


@dataclass
class ScriptResult:
    video: Path
    thumbnail: Path
    metadata_path: Path
    captions: dict[str, Path]
    segments: list[dict]
    metadata: dict = field(default_factory=dict)


def plan_script(spec: ScriptSpec, settings: Settings) -> list[PlannedSegment]:
    """The segments a script becomes; raises InvalidInputError when it cannot be made."""
    try:
        if spec.clip.audio is None:
            plan = split_script(
                spec.text,
                max_clip_seconds=spec.segment_seconds,
                words_per_minute=settings.words_per_minute,
                max_script_seconds=settings.max_script_seconds,
                max_segments=settings.max_segments,
            )
            return [PlannedSegment(s.index, s.text, segment_seed(spec.clip.seed, s.index, 1)) for s in plan.segments]
        return _plan_voice(spec, settings)
    except (EmptyTextError, ScriptTooLongError) as exc:
        raise InvalidInputError(str(exc)) from exc


def _plan_voice(spec: ScriptSpec, settings: Settings) -> list[PlannedSegment]:
    from ltx2.media import MediaError, read_audio
    from ltx2.script.voice import cut_points

    duration = audio_seconds(Path(spec.clip.audio))
    if duration > settings.max_script_seconds:
        raise InvalidInputError(
            f"the recording is {duration:.0f} s; this server takes at most {settings.max_script_seconds:g} s"
        )
    # Split the text at the speaker's own pace, so its segments line up with the recording's.
    estimate = estimate_speech_seconds(spec.text, settings.words_per_minute) or duration
    pace = settings.words_per_minute * estimate / duration
    texts = split_script(spec.text, max_clip_seconds=spec.segment_seconds, words_per_minute=pace).texts
    try:
        samples, rate = read_audio(spec.clip.audio, channels=1)
    except MediaError as exc:
        raise InvalidInputError(str(exc)) from exc
    weights = [estimate_speech_seconds(t, pace) for t in texts]
    cuts = cut_points(samples, rate, weights, max_seconds=spec.segment_seconds)
    if len(cuts) - 1 > settings.max_segments:
        raise InvalidInputError(
            f"the recording needs {len(cuts) - 1} clips; this server takes at most {settings.max_segments}"
        )
    if len(cuts) - 1 != len(texts):  # more pieces than sentences: share the words out evenly
        texts = _share_words(spec.text, len(cuts) - 1)
    fps = spec.clip.fps or settings.default_fps
    frames = [round(c * fps) for c in cuts]  # on the frame grid: each piece is a whole number of frames
    return [
        PlannedSegment(
            i,
            texts[i],
            segment_seed(spec.clip.seed, i, 1),
            audio_start=round(frames[i] / fps, 6),
            seconds=round((frames[i + 1] - frames[i]) / fps, 6),
        )
        for i in range(len(cuts) - 1)
    ]


def _share_words(text: str, count: int) -> list[str]:
    words = text.split()
    per = math.ceil(len(words) / count) if words else 0
    return [" ".join(words[i * per : (i + 1) * per]) or "..." for i in range(count)]


def segment_folder(settings: Settings, job_id: str) -> Path:
    return settings.state_dir / "segments" / job_id


def _clip_for(
    spec: ScriptSpec, seg: PlannedSegment, first_frame: Path | None, fps: float, words_per_minute: float
) -> ClipSpec:
    """One segment's clip: its text and seed, one extra leading frame when it continues the previous one."""
    extra = 1.0 / fps if first_frame is not None else 0.0
    if seg.seconds is not None:
        seconds = seg.seconds + extra
        audio_start = max(0.0, seg.audio_start - extra)
    else:
        seconds = max(estimate_speech_seconds(seg.text, words_per_minute), 1.0) + extra
        audio_start = 0.0
    clip = replace(
        spec.clip, text=seg.text, seed=seg.seed, seconds=seconds, audio_start=audio_start, first_frame=first_frame
    )
    if spec.draft:
        clip.width, clip.height = draft_size(clip.width, clip.height)
        clip.mode = "distilled"
    return clip


def link_segments(source: Path, folder: Path, keep: list[int]) -> None:
    """Put the `keep` segments of another job's folder into `folder`, same bytes (hard links where possible)."""
    import shutil

    from ltx2.script.stitch import SegmentFiles

    manifest = _read_manifest(source)
    entries = {e["index"]: e for e in manifest.get("segments", [])}
    folder.mkdir(parents=True, exist_ok=True)
    for index in keep:
        src, dst = SegmentFiles(source, index), SegmentFiles(folder, index)
        if index not in entries or not src.exists():
            raise InvalidInputError(f"segment {index + 1} of the earlier video is gone; render the whole script again")
        for a, b in zip(src.paths(), dst.paths()):
            b.unlink(missing_ok=True)
            try:
                os.link(a, b)
            except OSError:  # another file system, or links not allowed
                shutil.copy2(a, b)
    kept = [entries[i] for i in sorted(keep)]
    _write_manifest(folder, {**manifest, "segments": kept})


def _read_manifest(folder: Path) -> dict:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def _write_manifest(folder: Path, data: dict) -> None:
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)


def render_script(
    engine: Engine,
    spec: ScriptSpec,
    segments: list[PlannedSegment],
    folder: Path,
    out_path: Path,
    settings: Settings,
    on_progress=None,
    should_cancel: CancelCheck | None = None,
) -> ScriptResult:
    """Generate every segment not already in `folder` (matching its manifest), then stitch and caption."""
    from ltx2.domain import captions as cap
    from ltx2.media import thumbnail_from_mp4
    from ltx2.script.stitch import SegmentFiles, stitch, write_segment

    fps = spec.clip.fps or settings.default_fps
    folder.mkdir(parents=True, exist_ok=True)
    manifest = _read_manifest(folder)
    stored = {e["index"]: e for e in manifest.get("segments", [])}
    if manifest.get("fps") not in (None, fps):
        stored = {}
    entries: dict[int, dict] = {}
    todo = []
    for seg in segments:
        old = stored.get(seg.index)
        if old is not None and old.get("key") == seg.key() and SegmentFiles(folder, seg.index).exists():
            entries[seg.index] = old
            seg.frames = old["frames"]
        else:
            todo.append(seg.index)
    started = time.perf_counter()
    n = len(segments)
    probe = plan_request(_clip_for(spec, segments[0], None, fps, settings.words_per_minute), settings)
    per_segment = sum(steps for _, steps in engine.steps_plan(probe))
    sample_rate = manifest.get("sample_rate")
    pipeline = manifest.get("pipeline")
    for done, index in enumerate(todo):
        seg = segments[index]
        _check_cancel(should_cancel)
        previous = SegmentFiles(folder, index - 1).last_frame if index > 0 else None
        clip = _clip_for(spec, seg, previous, fps, settings.words_per_minute)
        request = plan_request(clip, settings)
        keep = round(seg.seconds * fps) if seg.seconds is not None else None
        where, data = f"segment {index + 1}/{n}", {"segment": index + 1, "segments": n}
        report = Reporter(on_progress, per_segment, unit=done, where=where, data=data)
        if done == 0:
            report.plan(plan_of("script", request, segments=len(todo)))

        # Generation and the lazy decode that writing the segment drives hold the engine together.
        with engine.exclusive(f"segment {index + 1} at {request.width}x{request.height}"):
            result = engine.generate(request, on_progress=report, should_cancel=should_cancel)
            report.audio_done()
            waveform = result.audio.waveform.float().cpu().numpy()
            sample_rate = sample_rate or result.audio.sampling_rate
            if result.audio.sampling_rate != sample_rate:
                raise InvalidInputError("segments came back at different audio sample rates")
            pipeline = result.pipeline
            # Own voice: exactly the recording's piece (cuts are on the frame grid), so no audio plays twice.
            skip = 1 if previous is not None else 0
            kept = min(keep, request.num_frames - skip) if keep is not None else request.num_frames - skip
            seg.frames = write_segment(
                SegmentFiles(folder, index),
                report.decoded(result.video, request.num_frames, should_cancel, needed=kept + skip),
                waveform,
                sample_rate,
                request.fps,
                drop_first=previous is not None,
                max_frames=keep,
                on_frames=report.encoded(kept),
            )
        entries[index] = {
            "index": index,
            "key": seg.key(),
            "frames": seg.frames,
            "text": seg.text,
            "seed": seg.seed,
            "take": seg.take,
            "audio_start": seg.audio_start,
            "seconds": seg.seconds,
        }
        _write_manifest(
            folder,
            {
                "fps": fps,
                "sample_rate": sample_rate,
                "pipeline": pipeline,
                "segments": [entries[i] for i in sorted(entries)],
            },
        )
    _check_cancel(should_cancel)
    files = [SegmentFiles(folder, s.index) for s in segments]
    lengths = [s.frames for s in segments]
    line = _timeline(lengths, spec.crossfade, fps)
    bounds = line.bounds(fps, spec.clip.speed)
    cues = cap.build_cues([(s.text, a, b) for s, (a, b) in zip(segments, bounds)])
    model = "tiny" if engine.weights.tiny else engine.model_info["family"]
    stitch_start = time.perf_counter()
    final = Reporter(on_progress, per_segment, unit=len(todo), data={"segment": n, "segments": n})
    if not todo:  # every segment reused: the final encode is the whole job
        final.plan(plan_of("script", probe, segments=0))
    stitch(
        files,
        lengths,
        out_path,
        fps=fps,
        sample_rate=sample_rate,
        speed=spec.clip.speed,
        crossfade_frames=line.crossfade,
        burn_in=cues if spec.burn_captions else None,
        preset=settings.encode_preset,
        metadata={"comment": json.dumps({"avatar_model": model, "seed": spec.clip.seed}), "avatar_model": model},
        on_frames=final.encoded(line.total, phase="stitch"),
    )
    finished = time.perf_counter()
    written: dict[str, Path] = {}
    for fmt in spec.captions:
        path = out_path.with_suffix(f".{fmt}")
        _write_text(path, cap.to_srt(cues) if fmt == "srt" else cap.to_vtt(cues))
        written[fmt] = path
    thumbnail = thumbnail_from_mp4(out_path, out_path.with_suffix(".jpg"))
    seg_docs = [
        {
            "number": s.index + 1,
            "text": s.text,
            "seed": s.seed,
            "take": s.take,
            "frames": s.frames,
            "start": round(a, 3),
            "end": round(b, 3),
            "reused": s.index not in todo,
            **({"audio_start": s.audio_start, "seconds": s.seconds} if s.seconds is not None else {}),
        }
        for s, (a, b) in zip(segments, bounds)
    ]
    width, height = draft_size(spec.clip.width, spec.clip.height) if spec.draft else (spec.clip.width, spec.clip.height)
    metadata = {
        "model": model,
        "tiny_checkpoint": engine.weights.tiny,
        "pipeline": pipeline,
        "text": spec.text,
        "seed": spec.clip.seed,
        "width": width,
        "height": height,
        "fps": fps,
        "speed": spec.clip.speed,
        "mode": "distilled" if spec.draft else spec.clip.mode,
        "draft": spec.draft,
        "num_frames": line.total,
        "crossfade_frames": line.crossfade,
        "segments": len(segments),
        "segments_generated": len(todo),
        "reference_image": bool(spec.clip.image),
        "audio_input": bool(spec.clip.audio),
        "lora": Path(spec.clip.lora).name if spec.clip.lora else None,
        "timings": {
            "generate_s": round(stitch_start - started, 3),
            "stitch_s": round(finished - stitch_start, 3),
            "total_s": round(finished - started, 3),
        },
        "video": out_path.name,
        "thumbnail": thumbnail.name,
    }
    metadata_path = out_path.with_suffix(".json")
    _write_text(metadata_path, json.dumps(metadata, indent=2) + "\n")
    return ScriptResult(out_path, thumbnail, metadata_path, written, seg_docs, metadata)


def _check_cancel(should_cancel: CancelCheck | None) -> None:
    if should_cancel is not None and should_cancel():
        raise JobCanceled("canceled")


def _timeline(lengths: list[int], crossfade: float, fps: float):
    from ltx2.script.stitch import timeline

    return timeline(lengths, round(crossfade * fps))


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
