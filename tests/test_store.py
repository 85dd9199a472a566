"""The job store: atomic claims, guarded status moves, reaper policy, idempotency, cursors."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from ltx2.jobs.models import Job, utcnow
from ltx2.jobs.store import IdempotencyConflict, JobStore


@pytest.fixture
def store(tmp_path):
    s = JobStore(f"sqlite:///{tmp_path / 'jobs.db'}")
    s.migrate()
    return s


def test_claims_oldest_highest_priority_first(store):
    low = store.create("generate", {"n": 1})[0]
    high = store.create("generate", {"n": 2}, priority=5)[0]
    later = store.create("generate", {"n": 3})[0]
    assert [store.claim("w", ["generate"]).id for _ in range(3)] == [high.id, low.id, later.id]
    assert store.claim("w", ["generate"]) is None
    assert store.claim("w", ["train"]) is None


def test_concurrent_workers_claim_each_job_exactly_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'race.db'}"
    JobStore(url).migrate()
    ids = {JobStore(url).create("generate", {"n": i})[0].id for i in range(40)}
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        own = JobStore(url)  # its own engine and connections, like a separate process
        while (job := own.claim(name, ["generate"])) is not None:
            with lock:
                claimed.append((name, job.id))

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(j for _, j in claimed) == sorted(ids)  # every job once, none twice


def test_status_moves_are_guarded_and_sequenced(store):
    job = store.create("generate", {})[0]
    assert not store.transition(job.id, "succeeded")  # not running yet
    claimed = store.claim("w1", ["generate"])
    assert claimed.status_sequence == 1
    assert not store.transition(job.id, "succeeded", worker_id="someone-else")
    assert store.transition(job.id, "succeeded", worker_id="w1", output={"video": "x.mp4"})
    for target in ("failed", "canceled", "processing", "starting", "succeeded"):
        assert not store.transition(job.id, target), f"left a terminal state for {target}"
    final = store.get(job.id)
    assert final.status == "succeeded" and final.status_sequence == 2 and final.completed_at is not None


def test_cancel_waiting_at_once_running_by_flag(store):
    waiting = store.create("generate", {"n": 1})[0]
    running = store.create("generate", {"n": 2})[0]
    assert store.claim("w", ["generate"]).id == waiting.id
    store.request_cancel(running.id)
    assert store.get(running.id).status == "canceled"
    assert not store.cancel_requested(waiting.id)
    assert store.request_cancel(waiting.id).status == "processing"
    assert store.cancel_requested(waiting.id)


def test_reaper_requeues_once_then_fails_worker_lost(store):
    job = store.create("generate", {})[0]

    def go_stale():
        with store.session() as s:
            s.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
            s.commit()

    store.claim("w1", ["generate"])
    go_stale()
    assert store.reap(60) == [(job.id, "starting")]
    assert store.get(job.id).worker_id is None
    again = store.claim("w2", ["generate"])
    assert again.id == job.id and again.attempt == 2
    go_stale()
    assert store.reap(60) == [(job.id, "failed")]
    lost = store.get(job.id)
    assert lost.error_code == "worker_lost" and "stopped responding" in lost.logs
    assert store.reap(60) == []  # nothing left to reap; a second reaper finds nothing either


def test_fresh_heartbeat_is_not_reaped(store):
    job = store.create("generate", {})[0]
    store.claim("w1", ["generate"])
    assert store.heartbeat(job.id, "w1")
    assert store.reap(60) == []
    assert not store.heartbeat(job.id, "w2")  # not that worker's job


def test_idempotency_key(store):
    first, created = store.create("generate", {"text": "a"}, idempotency_key="k")
    again, created_again = store.create("generate", {"text": "a"}, idempotency_key="k")
    assert created and not created_again and again.id == first.id
    with pytest.raises(IdempotencyConflict):
        store.create("generate", {"text": "b"}, idempotency_key="k")


def test_list_cursor_and_queue_positions(store):
    jobs = [store.create("generate", {"n": i})[0] for i in range(5)]
    page, cursor = store.list(limit=2)
    assert [j.id for j in page] == [jobs[4].id, jobs[3].id] and cursor is not None
    rest, end = store.list(limit=10, cursor=cursor)
    assert [j.id for j in rest] == [j.id for j in reversed(jobs[:3])] and end is None
    assert [store.queue_position(j) for j in jobs] == [1, 2, 3, 4, 5]
    store.claim("w", ["generate"])
    assert store.queue_position(store.get(jobs[1].id)) == 1


def test_logs_are_bounded_and_keep_the_newest(store):
    job = store.create("generate", {})[0]
    for i in range(3000):
        store.append_log(job.id, f"line {i:05d} " + "x" * 40)
    logs = store.get(job.id).logs
    assert len(logs) <= 64_100 and logs.rstrip().endswith("line 02999 " + "x" * 40)
    assert "line 00000" not in logs


def test_migrations_are_idempotent_and_the_schema_is_usable(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    JobStore(url).migrate()
    JobStore(url).migrate()
    s = JobStore(url)
    job = s.create("generate", {"x": 1})[0]
    time.sleep(0.01)
    assert s.get(job.id).input == {"x": 1}
