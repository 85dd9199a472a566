"""The job store: atomic claims, guarded status moves, reaper policy, idempotency, cursors.

Every test runs on SQLite and on a real PostgreSQL server (`db_url` in conftest; tests/pg.py).
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from ltx2.store import lifecycle
from ltx2.store.jobs import IdempotencyConflict, JobStore, as_utc
from ltx2.store.models import Job, utcnow


@pytest.fixture
def store(db_url):
    s = JobStore(db_url)
    s.migrate()
    yield s
    s.close()


def test_claims_oldest_highest_priority_first(store):
    low = store.create("generate", {"n": 1})[0]
    high = store.create("generate", {"n": 2}, priority=5)[0]
    later = store.create("generate", {"n": 3})[0]
    assert [lifecycle.claim(store, "w", ["generate"]).id for _ in range(3)] == [high.id, low.id, later.id]
    assert lifecycle.claim(store, "w", ["generate"]) is None
    assert lifecycle.claim(store, "w", ["train"]) is None


def test_concurrent_workers_claim_each_job_exactly_once(db_url):
    url = db_url
    JobStore(url).migrate()
    ids = {JobStore(url).create("generate", {"n": i})[0].id for i in range(40)}
    claimed: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work(name: str) -> None:
        own = JobStore(url)  # its own engine and connections, like a separate process
        while (job := lifecycle.claim(own, name, ["generate"])) is not None:
            with lock:
                claimed.append((name, job.id))
        own.close()

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(j for _, j in claimed) == sorted(ids)  # every job once, none twice


def test_status_moves_are_guarded_and_sequenced(store):
    job = store.create("generate", {})[0]
    assert not lifecycle.move(store, job.id, "succeeded")  # not running yet
    claimed = lifecycle.claim(store, "w1", ["generate"])
    assert claimed.status_sequence == 1
    assert not lifecycle.move(store, job.id, "succeeded", worker_id="someone-else")
    assert lifecycle.move(store, job.id, "succeeded", worker_id="w1", output={"video": "x.mp4"})
    for target in ("failed", "canceled", "processing", "starting", "succeeded"):
        assert not lifecycle.move(store, job.id, target), f"left a terminal state for {target}"
    final = store.get(job.id)
    assert final.status == "succeeded" and final.status_sequence == 2 and final.completed_at is not None


def test_cancel_waiting_at_once_running_by_flag(store):
    waiting = store.create("generate", {"n": 1})[0]
    running = store.create("generate", {"n": 2})[0]
    assert lifecycle.claim(store, "w", ["generate"]).id == waiting.id
    lifecycle.cancel(store, running.id)
    assert store.get(running.id).status == "canceled"
    assert not store.cancel_requested(waiting.id)
    assert lifecycle.cancel(store, waiting.id).status == "processing"
    assert store.cancel_requested(waiting.id)


def test_reaper_requeues_once_then_fails_worker_lost(store):
    job = store.create("generate", {})[0]

    def go_stale():
        with store.session() as s:
            s.execute(update(Job).where(Job.id == job.id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
            s.commit()

    lifecycle.claim(store, "w1", ["generate"])
    go_stale()
    assert lifecycle.reap(store, 60) == [(job.id, "starting")]
    assert store.get(job.id).worker_id is None
    again = lifecycle.claim(store, "w2", ["generate"])
    assert again.id == job.id and again.attempt == 2
    # The lost worker comes back: it can no longer write progress, heartbeat or a result for the job.
    store.set_progress(job.id, phase="late", step=5, total=10, percent=50.0, worker_id="w1")
    assert store.get(job.id).progress_phase == "claimed"
    assert not store.heartbeat(job.id, "w1") and not lifecycle.move(store, job.id, "succeeded", worker_id="w1")
    go_stale()
    assert lifecycle.reap(store, 60) == [(job.id, "failed")]
    lost = store.get(job.id)
    assert lost.error_code == "worker_lost" and "stopped responding" in lost.logs
    assert lifecycle.reap(store, 60) == []  # nothing left to reap; a second reaper finds nothing either


def test_fresh_heartbeat_is_not_reaped(store):
    job = store.create("generate", {})[0]
    lifecycle.claim(store, "w1", ["generate"])
    assert store.heartbeat(job.id, "w1")
    assert lifecycle.reap(store, 60) == []
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
    lifecycle.claim(store, "w", ["generate"])
    assert store.queue_position(store.get(jobs[1].id)) == 1


def test_status_reads_in_one_go_match_the_orm_reads(store):
    jobs = [store.create("generate", {"n": i, "text": "é"}, priority=i % 2)[0] for i in range(4)]
    lifecycle.claim(store, "w", ["generate"])  # the highest priority, oldest: jobs[1]
    for job in jobs:
        row, position = store.get_with_position(job.id)
        orm = store.get(job.id)
        assert position == store.queue_position(orm)
        for column in ("id", "status", "input", "output", "priority", "seq", "logs", "progress_percent"):
            assert getattr(row, column) == getattr(orm, column), column
        assert as_utc(row.created_at) == as_utc(orm.created_at)
    assert store.get_with_position(jobs[1].id)[1] is None  # processing: no place in the queue
    assert store.queue_positions(store.list()[0]) == {
        j.id: store.queue_position(store.get(j.id)) for j in jobs if j.id != jobs[1].id
    }
    assert store.get_with_position("nope") == (None, None)


def test_a_read_only_listing_gives_the_documents_of_the_orm_listing(store):
    from ltx2.store.documents import job_document

    jobs = [store.create("generate", {"n": i, "text": "é"}, priority=i % 2)[0] for i in range(4)]
    lifecycle.claim(store, "w", ["generate"])
    lifecycle.cancel(store, jobs[0].id)
    for status in (None, ["starting"]):
        orm, orm_next = store.list(status=status, limit=3)
        rows, rows_next = store.list(status=status, limit=3, read_only=True)
        assert rows_next == orm_next
        assert [job_document(r, store.links) for r in rows] == [job_document(j, store.links) for j in orm]


def test_logs_are_bounded_and_keep_the_newest(store):
    job = store.create("generate", {})[0]
    for i in range(1500):  # 1500 lines of 51 characters: past the 64 KB bound
        store.append_log(job.id, f"line {i:05d} " + "x" * 40)
    logs = store.get(job.id).logs
    assert len(logs) <= 64_100 and logs.rstrip().endswith("line 01499 " + "x" * 40)
    assert "line 00000" not in logs


def test_migrations_are_idempotent_and_the_schema_is_usable(db_url):
    url = db_url
    JobStore(url).migrate()
    JobStore(url).migrate()
    s = JobStore(url)
    job = s.create("generate", {"x": 1})[0]
    time.sleep(0.01)
    assert s.get(job.id).input == {"x": 1}


def test_migrations_from_several_processes_at_once_on_an_empty_database(db_url):
    """Workers and the API all run `upgrade head` at start; on an empty database they must not collide."""
    code = "import sys; from ltx2.store.jobs import JobStore; JobStore(sys.argv[1]).migrate()"
    procs = [subprocess.Popen([sys.executable, "-c", code, db_url], stderr=subprocess.PIPE) for _ in range(4)]
    errors = [p.communicate(timeout=120)[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    store = JobStore(db_url)
    with store.session() as s:
        assert s.scalar(text("SELECT version_num FROM alembic_version")) == _head_revision()
    job = store.create("generate", {"x": 1})[0]
    assert lifecycle.claim(store, "w", ["generate"]).id == job.id
    store.close()


def _head_revision() -> str:
    from pathlib import Path

    from alembic.config import Config
    from alembic.script import ScriptDirectory

    import ltx2.store.jobs as store_module

    config = Config()
    config.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    return ScriptDirectory.from_config(config).get_current_head()


def test_reapers_on_several_machines_move_each_stale_job_once(db_url):
    store = JobStore(db_url)
    store.migrate()
    jobs = [store.create("generate", {"n": i})[0] for i in range(12)]
    for i, _ in enumerate(jobs):
        lifecycle.claim(store, f"w{i}", ["generate"])
    with store.session() as s:
        s.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
        s.commit()
    results: list[list] = []
    start = threading.Barrier(4)

    def reaper() -> None:
        own = JobStore(db_url)  # like the API's reaper thread on another machine
        start.wait()
        results.append(lifecycle.reap(own, 60))
        own.close()

    threads = [threading.Thread(target=reaper) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    moved = sorted(job_id for result in results for job_id, _ in result)
    assert moved == sorted(j.id for j in jobs)  # each job moved by exactly one reaper
    for job in jobs:
        again = store.get(job.id)
        assert again.status == "starting" and again.status_sequence == 2
        assert again.logs.count("worker stopped responding") == 1
    store.close()


def test_idle_worker_wakes_on_a_new_job(db_url):
    """PostgreSQL: LISTEN/NOTIFY wakes a waiting worker at once; SQLite: the wait is a plain timeout."""
    waiter, creator = JobStore(db_url), JobStore(db_url)
    waiter.migrate()
    if not waiter.can_listen:
        started = time.monotonic()
        assert waiter.wait_for_job(0.3) is False
        assert time.monotonic() - started >= 0.29
        return
    assert waiter.wait_for_job(0.3) is False  # nothing happened: times out (and now LISTENs)
    woke: list = []
    thread = threading.Thread(target=lambda: woke.append((waiter.wait_for_job(20), time.monotonic())))
    thread.start()
    time.sleep(0.3)
    created_at = time.monotonic()
    creator.create("generate", {"n": 1})
    thread.join(30)
    ((notified, at),) = woke
    assert notified and at - created_at < 2.0
    # A notification that arrives while the worker is busy is kept: the next wait returns at once.
    job = lifecycle.claim(waiter, "w", ["generate"])
    lifecycle.move(creator, job.id, "starting", worker_id="w")  # requeued (e.g. by a worker shutting down)
    time.sleep(0.2)
    started = time.monotonic()
    assert waiter.wait_for_job(20) is True and time.monotonic() - started < 2.0
    # `stop` ends a wait early.
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert waiter.wait_for_job(20, stop) is False and time.monotonic() - started < 2.0
    waiter.close()
    creator.close()


def test_json_timestamps_and_seq_round_trip(db_url):
    """JSON round-trips, timestamps come back timezone-aware, `seq` counts up; claims use SKIP LOCKED."""
    store = JobStore(db_url)
    store.migrate()
    doc = {"text": "Grüße ✓", "nested": {"list": [1, 2.5, None, True]}}
    a = store.create("generate", doc, webhook_events_filter=["completed"])[0]
    b = store.create("generate", {})[0]
    assert b.seq > a.seq
    again = store.get(a.id)
    assert again.input == doc and again.webhook_events_filter == ["completed"]
    claimed = lifecycle.claim(store, "w", ["generate"])
    if store.is_postgres:
        assert claimed.started_at.tzinfo is not None and claimed.created_at.tzinfo is not None
        compiled = str(select(Job.seq).with_for_update(skip_locked=True).compile(dialect=store.engine.dialect))
        assert "FOR UPDATE SKIP LOCKED" in compiled
    store.close()


@pytest.mark.postgres
def test_liveness_uses_the_database_clock_on_postgres(pg_cluster, monkeypatch):
    """A worker machine whose clock runs 5 minutes late must not look dead to the API's reaper (PostgreSQL
    stamps heartbeats with the server's clock; SQLite is one machine, so one clock, anyway)."""
    import ltx2.store.jobs as store_module

    store = JobStore(pg_cluster.create_database())
    store.migrate()
    job = store.create("generate", {})[0]
    late = utcnow() - timedelta(minutes=5)
    monkeypatch.setattr(store_module, "utcnow", lambda: late)  # this "machine" is late
    lifecycle.claim(store, "w1", ["generate"])
    assert store.heartbeat(job.id, "w1")
    store.worker_seen("w1", state="busy", job_id=job.id, pid=1)
    monkeypatch.undo()
    assert lifecycle.reap(store, 60) == []
    assert [w.id for w in store.workers(alive_within_s=60)] == ["w1"]
    store.close()
