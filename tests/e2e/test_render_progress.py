"""The render path on the tiny checkpoint: decode and encode overlapped (same frames as one after the other), and
progress from the real callbacks — frames decoded, frames encoded, one percent that never goes back."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ltx2.domain.progress import JobMeter

pytestmark = pytest.mark.slow

# 121 frames: the VAE decodes them in three temporal chunks (tiles of 64 frames overlapping by 24).
LONG_CLIP = {"width": 64, "height": 64, "num_frames": 121}


def _generate(engine, seed: int = 5):
    from ltx2.engine.pipelines import GenerationRequest

    request = GenerationRequest(prompt="A woman speaks to the camera.", seed=seed, **LONG_CLIP)
    result = engine.generate(request)
    return request, result, result.audio.waveform.float().cpu().numpy()


def test_overlapped_encode_writes_the_frames_the_sequential_one_does(engine, tmp_path):
    from ltx2.media import decode_frames, encode_mp4, encode_mp4_overlapped, probe

    outputs = {}
    for name, encode in (("sequential", encode_mp4), ("overlapped", encode_mp4_overlapped)):
        with engine.exclusive("the test"):
            request, result, audio = _generate(engine)
            outputs[name] = encode(
                result.video, request.fps, tmp_path / f"{name}.mp4", audio=audio, sample_rate=result.audio.sampling_rate
            )
    seq, ovl = decode_frames(outputs["sequential"]), decode_frames(outputs["overlapped"])
    assert seq.shape == ovl.shape == (121, 64, 64, 3)
    assert np.array_equal(seq, ovl)
    assert probe(outputs["overlapped"]).has_audio
    assert not list(tmp_path.glob(".*part*"))


def test_a_clip_reports_decode_and_encode_frames_and_a_percent_that_only_grows(engine, tiny_settings, tmp_path):
    from ltx2.media import probe
    from ltx2.render import ClipSpec, render

    meter = JobMeter()
    events = []

    def on_progress(p, _data=None) -> None:
        snap = meter.update(p.phase, p.step, p.total, unit=p.unit, frames=p.frames)
        events.append((p.phase, p.step, p.total, snap.percent, threading.current_thread().name, p.plan))

    spec = ClipSpec(text="Hello there, this is a longer line.", width=64, height=64, seconds=5.0)
    result = render(engine, spec, tmp_path / "clip.mp4", tiny_settings, on_progress=on_progress)

    assert events[0][0] == "prepare" and events[0][5]["frames"] == 121 and events[0][5]["kind"] == "clip"
    phases = list(dict.fromkeys(e[0] for e in events))
    assert phases[:4] == ["prepare", "stage 1", "stage 2", "audio"]
    assert set(phases[4:]) == {"decode", "encode"}
    for phase, first in (("decode", 32), ("encode", 0)):  # the encoder says when it begins
        counts = [e[1] for e in events if e[0] == phase]
        assert len(counts) >= 3 and counts == sorted(set(counts)) and counts[0] == first and counts[-1] == 121
        assert all(e[2] == 121 for e in events if e[0] == phase)
    # The encoder ran on its own thread, the decode on the caller's.
    assert {e[4] for e in events if e[0] == "encode"} == {"mp4-encoder"}
    assert threading.current_thread().name in {e[4] for e in events if e[0] == "decode"}
    percents = [e[3] for e in events]
    assert percents == sorted(percents)
    last_denoise = max(i for i, e in enumerate(events) if e[0] == "stage 2")
    assert percents[last_denoise] < 90.0 and percents[-1] == pytest.approx(100.0)
    assert probe(result.video).frames == 121


@pytest.fixture
def tiny_settings(tmp_path):
    from ltx2.settings import Settings

    return Settings(outputs_dir=tmp_path / "out", temp_dir=tmp_path / "tmp")
