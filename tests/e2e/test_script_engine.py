"""Long scripts through the real pipelines on the tiny checkpoint: segments, continuity, stitch, captions, voice."""

from __future__ import annotations

import hashlib
import math
import wave
from pathlib import Path

import numpy as np
import pytest

from ltx2.domain.errors import JobCanceled
from ltx2.domain.progress import JobMeter
from ltx2.media import probe
from ltx2.render import ClipSpec
from ltx2.render.script import ScriptSpec, plan_script, render_script
from ltx2.script.stitch import SegmentFiles, read_frames
from ltx2.settings import Settings

FIVE = (
    "Hello and welcome. This clip is made from a script. Each sentence is spoken in turn. "
    "The face stays the same throughout. Thanks for watching!"
)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(outputs_dir=tmp_path / "out", temp_dir=tmp_path / "tmp")


def spec_for(text: str, **clip) -> ScriptSpec:
    extra = {k: clip.pop(k) for k in ("captions", "burn_captions", "crossfade", "draft") if k in clip}
    return ScriptSpec(clip=ClipSpec(text=text, width=64, height=64, **clip), text=text, segment_seconds=3.0, **extra)


def frame_hashes(path: Path) -> list[str]:
    return [hashlib.sha256(f.tobytes()).hexdigest() for f in read_frames(path)]


def test_a_five_sentence_script_becomes_one_captioned_video(engine, settings, tmp_path, face_photo):
    spec = spec_for(FIVE, image=face_photo, captions=("srt", "vtt"))
    segments = plan_script(spec, settings)
    assert len(segments) >= 4 and len({s.seed for s in segments}) == len(segments)
    seen = []
    meter = JobMeter(units=len(segments), finish_share=0.1)
    reports = []

    def on_progress(p, data):
        seen.append((data["segment"], p.overall_step, p.overall_total))
        snap = meter.update(p.phase, p.step, p.total, unit=p.unit, frames=p.frames, where=p.where)
        reports.append((data["segment"], p.phase, p.step, p.total, snap.percent, snap.label))

    result = render_script(
        engine, spec, segments, tmp_path / "seg", tmp_path / "out" / "a.mp4", settings, on_progress=on_progress
    )
    info = probe(result.video)
    frames = [s["frames"] for s in result.segments]
    fps = 24.0
    # The final video is its segments end to end: duration = sum of segment durations (within a frame each).
    assert info.frames == sum(frames)
    assert info.duration == pytest.approx(sum(frames) / fps, abs=len(frames) / fps)
    assert info.has_audio and info.audio_duration == pytest.approx(info.video_duration, abs=0.05)
    # Per-segment progress, in order, ending at the stitch.
    assert [s for s, _, _ in seen] == sorted(s for s, _, _ in seen) and seen[-1][0] == len(segments)
    assert seen[-1][1] == seen[-1][2]
    # Every segment's decode and encode report their frames (no long silent tail per segment), then the final
    # encode reports every frame of the video; one percent over it all never goes back.
    for number, seg in enumerate(result.segments, start=1):
        for phase in ("decode", "encode"):
            counts = [r[2] for r in reports if r[0] == number and r[1] == phase]
            assert (
                counts == sorted(counts)
                and counts[-1] == [r[3] for r in reports if r[0] == number and r[1] == phase][0]
            )
        assert [r[2] for r in reports if r[0] == number and r[1] == "encode"][-1] == seg["frames"]
    assert any(r[5] == f"segment 2/{len(segments)} · decode" for r in reports)
    stitched = [r[2] for r in reports if r[1] == "stitch"]
    assert stitched == sorted(stitched) and stitched[-1] == info.frames and len(stitched) > len(segments)
    percents = [r[4] for r in reports]
    assert percents == sorted(percents) and percents[-1] == pytest.approx(100.0)
    # Segment boundaries in the output are where the captions change.
    bounds = [(s["start"], s["end"]) for s in result.segments]
    assert bounds[0][0] == 0 and bounds[-1][1] == pytest.approx(info.frames / fps, abs=1e-3)
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(bounds, bounds[1:]))
    vtt = result.captions["vtt"].read_text()
    starts = [line.split(" --> ")[0] for line in vtt.splitlines() if " --> " in line]
    stamps = {_seconds(s) for s in starts}
    for start, _ in bounds:
        assert any(abs(start - t) < 0.002 for t in stamps), (start, stamps)
    assert result.captions["srt"].read_text().startswith("1\n00:00:00,000 --> ")
    assert result.metadata["tiny_checkpoint"] is True and result.metadata["segments"] == len(segments)


def _seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_each_segment_starts_from_the_previous_last_frame_and_keeps_the_face_anchored(
    engine, settings, tmp_path, face_photo, monkeypatch
):
    spec = spec_for("First line here. Second line follows. Third line ends it.", image=face_photo)
    segments = plan_script(spec, settings)
    assert len(segments) == 3
    requests = []
    real = engine.generate

    def spy(request, **kwargs):
        requests.append((request, engine._images(request)))
        return real(request, **kwargs)

    monkeypatch.setattr(engine, "generate", spy)
    folder = tmp_path / "seg"
    result = render_script(engine, spec, segments, folder, tmp_path / "b.mp4", settings)
    first, images = requests[0]
    assert first.first_frame is None and images[0].path == str(face_photo)
    for i, (request, images) in enumerate(requests[1:], start=1):
        previous_last = SegmentFiles(folder, i - 1).last_frame
        assert request.first_frame == previous_last
        assert images[0].frame_idx == 0 and images[0].path == str(previous_last)
        # The original photo is still there, anchoring a later keyframe.
        assert any(im.path == str(face_photo) and im.frame_idx > 0 for im in images)
        # One extra frame was generated for the continuity frame, and dropped.
        assert result.segments[i]["frames"] == request.num_frames - 1
    # The stored last frame is the segment's real last frame.
    from PIL import Image

    last = list(read_frames(SegmentFiles(folder, 0).video))[-1]
    assert np.array_equal(np.asarray(Image.open(SegmentFiles(folder, 0).last_frame)), last)


def test_cancel_mid_script_stops_between_steps_and_writes_no_video(engine, settings, tmp_path):
    spec = spec_for(FIVE)
    segments = plan_script(spec, settings)
    calls = {"n": 0}

    def should_cancel():
        calls["n"] += 1
        return calls["n"] > 15  # one segment is 11 steps: this lands inside segment 2

    out = tmp_path / "c.mp4"
    with pytest.raises(JobCanceled):
        render_script(engine, spec, segments, tmp_path / "seg", out, settings, should_cancel=should_cancel)
    assert not out.exists()
    assert SegmentFiles(tmp_path / "seg", 0).exists() and not SegmentFiles(tmp_path / "seg", 1).exists()


def test_a_rerun_resumes_from_the_segments_already_made(engine, settings, tmp_path):
    spec = spec_for(FIVE)
    segments = plan_script(spec, settings)
    folder = tmp_path / "seg"

    def cancel_late():
        return SegmentFiles(folder, 1).exists()  # two segments done, then stop in the third

    with pytest.raises(JobCanceled):
        render_script(engine, spec, segments, folder, tmp_path / "r.mp4", settings, should_cancel=cancel_late)
    before = {i: frame_hashes(SegmentFiles(folder, i).video) for i in (0, 1)}
    result = render_script(engine, spec, plan_script(spec, settings), folder, tmp_path / "r.mp4", settings)
    assert [s["reused"] for s in result.segments][:2] == [True, True]
    assert not any(s["reused"] for s in result.segments[2:])
    assert result.metadata["segments_generated"] == len(segments) - 2
    assert {i: frame_hashes(SegmentFiles(folder, i).video) for i in (0, 1)} == before


def _voice(path: Path, rate: int = 16000) -> tuple[Path, float]:
    """Speech stand-in: tone bursts with pauses between them (where the cuts should go)."""
    parts = []
    for i, seconds in enumerate((2.2, 2.6, 1.9)):
        t = np.arange(int(seconds * rate)) / rate
        parts.append(0.3 * np.sin(2 * math.pi * (180 + 40 * i) * t))
        parts.append(np.zeros(int(0.4 * rate)))
    samples = np.concatenate(parts)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype(np.int16).tobytes())
    return path, len(samples) / rate


def test_own_voice_script_is_cut_at_pauses_and_the_recording_plays_once_through(engine, settings, tmp_path):
    audio, duration = _voice(tmp_path / "voice.wav")
    text = "One sentence for the first part. Another for the second part. And a last one."
    spec = spec_for(text, audio=audio, steps=2)
    segments = plan_script(spec, settings)
    assert len(segments) >= 3
    assert segments[0].audio_start == 0
    assert sum(s.seconds for s in segments) == pytest.approx(duration, abs=1 / 24)
    assert all(s.seconds <= 3.0 + 1e-6 for s in segments)
    result = render_script(engine, spec, segments, tmp_path / "seg", tmp_path / "v.mp4", settings)
    info = probe(result.video)
    assert info.frames == sum(round(s.seconds * 24) for s in segments)
    assert info.audio_duration == pytest.approx(duration, abs=0.1)
