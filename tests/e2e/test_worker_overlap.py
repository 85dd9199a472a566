"""The worker starts job N+1's model work while job N's CPU tail (encode, thumbnail, metadata) finishes, and a
job is succeeded only once its files are in place. Real worker, real SQLite store, tiny engine."""

from __future__ import annotations

import threading

import pytest

import ltx2.media
from ltx2.settings import Settings
from ltx2.store import lifecycle
from ltx2.store.models import FAILED, SUCCEEDED
from ltx2.worker import main as worker_main
from ltx2.worker.main import KINDS, Worker
from tests.pace import scaled

JOB = {"text": "Hello there, this is a short one.", "width": 64, "height": 64, "seconds": 0.4}


@pytest.fixture
def worker(engine, tmp_path):
    settings = Settings(_env_file=None, outputs_dir=tmp_path / "out", temp_dir=tmp_path / "tmp", overlap_jobs=True)
    w = Worker(settings, worker_id="overlap-test")
    w.store.migrate()
    w.engine = engine
    yield w
    w._join_tail()
    w.store.close()


def drain(worker: Worker) -> None:
    """What the worker's loop does with a queue: claim and run until it is empty, then wait for the last tail."""
    while (job := lifecycle.claim(worker.store, worker.id, KINDS)) is not None:
        worker.run_job(job)
    worker._join_tail()


@pytest.fixture
def files_checked_at_success(worker, monkeypatch):
    """Every SUCCEEDED move, at the moment it is made: are the files its output names on disk?"""
    missing: list[str] = []
    real_move = lifecycle.move

    def move(store, job_id, to, **kwargs):
        if to == SUCCEEDED:
            output = kwargs["output"]
            for key in ("video", "thumbnail", "metadata_file"):
                if not (worker.settings.outputs_dir / output[key]).is_file():
                    missing.append(f"{job_id}: {output[key]}")
        return real_move(store, job_id, to, **kwargs)

    monkeypatch.setattr(worker_main.lifecycle, "move", move)
    return missing


def test_next_job_starts_while_the_last_tail_runs_and_success_waits_for_files(
    worker, engine, files_checked_at_success, monkeypatch
):
    ids = [worker.store.create("generate", {**JOB, "seed": i})[0].id for i in range(3)]
    generating: list[str] = []
    second_started = threading.Event()
    real_generate = engine.generate

    def generate(request, **kwargs):
        generating.append(request.seed)
        if len(generating) == 2:
            second_started.set()
        return real_generate(request, **kwargs)

    monkeypatch.setattr(engine, "generate", generate)
    seen_overlap: list[bool] = []
    real_thumbnail = ltx2.media.thumbnail_from_mp4

    def thumbnail(mp4, out):
        if mp4.stem == ids[0]:
            # Job 0's tail waits here until job 1's generation has begun: it can only begin if the worker
            # did not wait for this tail.
            seen_overlap.append(second_started.wait(scaled(60)))
        return real_thumbnail(mp4, out)

    monkeypatch.setattr(ltx2.media, "thumbnail_from_mp4", thumbnail)
    drain(worker)
    assert seen_overlap == [True], "job 1's model work did not start while job 0's tail ran"
    jobs = [worker.store.get(i) for i in ids]
    assert [j.status for j in jobs] == [SUCCEEDED] * 3
    assert files_checked_at_success == []
    for job in jobs:
        assert job.output["sha256"] and (worker.settings.outputs_dir / job.output["video"]).stat().st_size > 0
    assert worker.jobs_in_hand == set()


def test_a_failing_tail_fails_its_job_only(worker, files_checked_at_success, monkeypatch):
    ids = [worker.store.create("generate", {**JOB, "seed": i})[0].id for i in range(2)]
    real_thumbnail = ltx2.media.thumbnail_from_mp4

    def thumbnail(mp4, out):
        if mp4.stem == ids[0]:
            raise OSError("disk full while writing the thumbnail")
        return real_thumbnail(mp4, out)

    monkeypatch.setattr(ltx2.media, "thumbnail_from_mp4", thumbnail)
    drain(worker)
    first, second = (worker.store.get(i) for i in ids)
    assert first.status == FAILED and first.error_code == "internal_error" and "disk full" in first.error
    assert second.status == SUCCEEDED and files_checked_at_success == []
    assert (worker.settings.outputs_dir / second.output["video"]).is_file()
