"""The job-progress arithmetic: phase weights from measured costs, one percent over the whole job, elapsed, ETA."""

from __future__ import annotations

import pytest

from ltx2.domain.progress import (
    DEFAULT_WEIGHTS,
    JobMeter,
    estimate_eta,
    finish_share_from,
    job_key,
    weights_from,
)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_weights_come_from_measured_phase_seconds():
    records = [
        {"stage 1": 2.0, "stage 2": 2.0, "audio": 0.0, "decode": 3.0, "encode": 3.0},
        {"stage 1": 4.0, "stage 2": 2.0, "audio": 0.0, "decode": 1.0, "encode": 3.0},
    ]
    w = weights_from(records)
    assert w == pytest.approx({"stage 1": 0.3, "stage 2": 0.2, "audio": 0.0, "decode": 0.2, "encode": 0.3})


def test_weights_fall_back_to_defaults_without_complete_records():
    assert weights_from([]) == pytest.approx(DEFAULT_WEIGHTS)
    assert weights_from([{"stage 1": 5.0}]) == pytest.approx(DEFAULT_WEIGHTS)
    assert sum(weights_from([]).values()) == pytest.approx(1.0)


def test_finish_share_is_the_final_encodes_part_of_recent_scripts():
    assert finish_share_from([{"stage 1": 6.0, "encode": 2.0, "stitch": 2.0}]) == pytest.approx(0.2)
    assert finish_share_from([]) == pytest.approx(0.1)


def test_eta_uses_history_first_and_the_jobs_own_pace_later():
    # No history, no pace yet: no number rather than a made-up one.
    assert estimate_eta(0.0, 3.0, None) is None
    # Pace only: 25% in 10 s leaves 30 s.
    assert estimate_eta(25.0, 10.0, None) == pytest.approx(30.0)
    # History only at the start: alike jobs took 40 s.
    assert estimate_eta(0.0, 0.5, 40.0) == pytest.approx(40.0)
    # Both: weighted by how far the job is (here 50/50 between 20 s by history and 30 s by pace).
    assert estimate_eta(50.0, 30.0, 40.0) == pytest.approx(25.0)
    assert estimate_eta(100.0, 30.0, 40.0) == 0.0


def test_percent_covers_decode_and_encode_and_never_goes_back():
    clock = Clock()
    meter = JobMeter({"stage 1": 0.25, "stage 2": 0.25, "decode": 0.25, "encode": 0.25}, clock=clock)
    seen = [meter.update("prepare", 0, 1).percent]
    for step in range(1, 9):
        clock.now += 1
        seen.append(meter.update("stage 1", step, 8).percent)
    for step in range(1, 4):
        clock.now += 1
        seen.append(meter.update("stage 2", step, 3).percent)
    # The last denoising step is half the job, not 100%; "prepare" (announced at 0) no longer stands in front.
    assert seen[-1] == pytest.approx(50.0)
    assert meter.update("stage 2", 3, 3).phase == "stage 2"
    assert meter.update("audio", 0, 1).phase == "audio"
    # Decode and encode overlap: reports interleave; the phase in front is the decode until it ends.
    snap = meter.update("decode", 16, 49, frames=True)
    assert snap.phase == "decode" and (snap.step, snap.total) == (16, 49)
    snap = meter.update("encode", 16, 49, frames=True)
    assert snap.phase == "decode"
    assert snap.frames == {"frames_decoded": 16, "frames_encoded": 16, "frames_total": 49}
    seen.append(snap.percent)
    snap = meter.update("decode", 49, 49, frames=True)
    assert snap.phase == "encode" and snap.step == 16
    seen.append(snap.percent)
    snap = meter.update("encode", 49, 49, frames=True)
    seen.append(snap.percent)
    assert seen == sorted(seen)
    assert snap.percent == pytest.approx(100.0) and snap.eta_s == 0.0


def test_phase_seconds_are_measured_between_phase_ends():
    clock = Clock()
    meter = JobMeter(clock=clock)
    clock.now += 2  # text encoding before the first step belongs to stage 1
    meter.update("stage 1", 1, 1)
    clock.now += 1
    meter.update("stage 2", 1, 1)
    meter.update("audio", 0, 1)
    clock.now += 0.5
    meter.update("audio", 1, 1)
    clock.now += 3
    meter.update("decode", 10, 10, frames=True)
    clock.now += 0.5
    meter.update("encode", 10, 10, frames=True)
    clock.now += 0.25  # thumbnail, metadata: in the total only
    record = meter.record()
    assert record["phase_seconds"] == {"stage 1": 2.0, "stage 2": 1.0, "audio": 0.5, "decode": 3.0, "encode": 0.5}
    assert record["total_s"] == pytest.approx(7.25)
    # Weights made from this job reproduce its split.
    assert weights_from([record["phase_seconds"]])["decode"] == pytest.approx(3 / 7)


def test_script_percent_spans_segments_and_the_final_encode():
    clock = Clock()
    meter = JobMeter(units=2, finish_share=0.2, clock=clock)
    for unit in (0, 1):
        for phase in ("stage 1", "stage 2", "audio", "decode", "encode"):
            snap = meter.update(phase, 1, 1, unit=unit, where=f"segment {unit + 2}/3")
        assert snap.percent == pytest.approx(40.0 * (unit + 1))
    assert snap.label == "segment 3/3 · encode"
    snap = meter.update("stitch", 50, 100, unit=2, frames=True)
    assert snap.percent == pytest.approx(90.0)
    assert snap.label == "stitch" and snap.frames == {"frames_encoded": 50, "frames_total": 100}


def test_elapsed_and_eta_from_an_expected_length():
    clock = Clock()
    meter = JobMeter({"stage 1": 1.0, "stage 2": 0.0, "decode": 0.0, "encode": 0.0}, expected_total_s=20.0, clock=clock)
    clock.now += 5
    snap = meter.update("stage 1", 1, 4)
    assert snap.elapsed_s == pytest.approx(5.0)
    # 25% done: history says 15 s left, the pace says 15 s left.
    assert snap.eta_s == pytest.approx(15.0)
    assert snap.data()["elapsed_s"] == 5.0 and snap.data()["eta_s"] == 15.0


def test_alike_jobs_share_a_key():
    assert job_key("clip", "distilled", 128, 128, 49) == job_key("clip", "distilled", 128, 128, 49, 1)
    assert job_key("clip", "distilled", 128, 128, 49) != job_key("clip", "two-stage", 128, 128, 49)
    assert job_key("clip", "distilled", 128, 128, 49) != job_key("script", "distilled", 128, 128, 49)
