"""Property test of the job lifecycle: random claim/progress/cancel/finish/requeue/reap/retry/delete sequences
against a model, on SQLite and PostgreSQL. Whatever the order: nothing leaves a terminal state, no job is lost,
status_sequence only grows (by one per move), and each job that finished has exactly one `completed` message."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import delete, select, update

from ltx2.domain.status import TERMINAL, JobStatus
from ltx2.store import lifecycle
from ltx2.store.jobs import JobStore
from ltx2.store.models import Job, OutboxEvent, WebhookDelivery, utcnow

S = JobStatus
HOOK = "http://127.0.0.1:9/hook"  # never contacted: no notifier runs here
WORKERS = ("w1", "w2")


@dataclass
class Model:
    """What the lifecycle should have done to one job."""

    seq: int  # creation order: the claim order
    status: JobStatus = S.STARTING
    sequence: int = 0
    worker: str | None = None
    attempt: int = 0
    cancel_flag: bool = False


def make_machine(store: JobStore):
    class Lifecycle(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            with store.session() as s:  # every example starts from an empty store
                for table in (OutboxEvent, WebhookDelivery, Job):
                    s.execute(delete(table))
                s.commit()
            self.jobs: dict[str, Model] = {}
            self.deleted: set[str] = set()
            self.created = 0

        # --- helpers ---------------------------------------------------------------------------------------

        def _pick(self, index: int, *statuses: JobStatus) -> str | None:
            ids = sorted(i for i, m in self.jobs.items() if m.status in statuses)
            return ids[index % len(ids)] if ids else None

        def _moved(self, job_id: str, to: JobStatus) -> None:
            m = self.jobs[job_id]
            m.status, m.sequence = to, m.sequence + 1
            if to in TERMINAL:
                m.cancel_flag = False
            if to == S.STARTING:  # requeued: no worker (a cancel asked for meanwhile still stands)
                m.worker = None

        # --- rules -----------------------------------------------------------------------------------------

        @rule(kind=st.sampled_from(["generate", "train"]), hook=st.booleans())
        def create(self, kind, hook):
            job, created = store.create(kind, {"n": self.created}, webhook=HOOK if hook else None)
            assert created
            self.created += 1
            self.jobs[job.id] = Model(seq=job.seq)

        @rule(
            worker=st.sampled_from(WORKERS), kinds=st.sampled_from([("generate",), ("train",), ("generate", "train")])
        )
        def claim(self, worker, kinds):
            job = lifecycle.claim(store, worker, kinds)
            waiting = [
                (m.seq, i) for i, m in self.jobs.items() if m.status == S.STARTING and store.get(i).kind in kinds
            ]
            if not waiting:
                assert job is None
                return
            expected = min(waiting)[1]  # same priority: the oldest waits least
            assert job is not None and job.id == expected
            self._moved(expected, S.PROCESSING)
            m = self.jobs[expected]
            m.worker, m.attempt = worker, m.attempt + 1
            # A worker reports its first step at once, so a requeue has progress to forget.
            store.set_progress(expected, phase="denoising", step=1, total=40, percent=2.5, worker_id=worker)

        @rule(index=st.integers(0, 50), step=st.integers(0, 40))
        def progress(self, index, step):
            job_id = self._pick(index, S.PROCESSING)
            if job_id is not None:
                store.set_progress(
                    job_id,
                    phase="denoising",
                    step=step,
                    total=40,
                    percent=step * 2.5,
                    worker_id=self.jobs[job_id].worker,
                )

        @rule(index=st.integers(0, 50))
        def cancel(self, index):
            job_id = self._pick(index, *S)
            if job_id is None:
                return
            m = self.jobs[job_id]
            before = m.status
            after = lifecycle.cancel(store, job_id)
            if before == S.STARTING:
                self._moved(job_id, S.CANCELED)
            elif before == S.PROCESSING:
                m.cancel_flag = True
            assert after.status == m.status

        @rule(
            index=st.integers(0, 50),
            to=st.sampled_from([S.SUCCEEDED, S.FAILED, S.CANCELED, S.STARTING]),
            own=st.booleans(),
        )
        def worker_finishes(self, index, to, own):
            """The worker's own moves (a result, a failure, a stop on cancel, a requeue on shutdown)."""
            job_id = self._pick(index, *S)
            if job_id is None:
                return
            m = self.jobs[job_id]
            if own and m.worker is None:  # never claimed: no worker can speak for it
                return
            worker = m.worker if own else "someone-else"
            ok = lifecycle.move(store, job_id, to, worker_id=worker, output={} if to == S.SUCCEEDED else None)
            allowed = m.status == S.PROCESSING and own
            assert ok == allowed, (m, to, own)
            if ok:
                self._moved(job_id, to)

        @rule(index=st.integers(0, 50))
        def worker_lost(self, index):
            job_id = self._pick(index, S.PROCESSING)
            if job_id is None:
                return
            with store.session() as s:
                s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
                s.commit()
            m = self.jobs[job_id]
            target = S.CANCELED if m.cancel_flag else S.STARTING if m.attempt < 2 else S.FAILED
            assert lifecycle.reap(store, 60) == [(job_id, target)]
            self._moved(job_id, target)

        @rule(index=st.integers(0, 50))
        def retry(self, index):
            job_id = self._pick(index, S.FAILED, S.CANCELED)
            if job_id is not None:
                old = store.get(job_id)
                new, _ = store.create(old.kind, old.input, webhook=old.webhook, retried_from=job_id)
                self.jobs[new.id] = Model(seq=new.seq)

        @rule(index=st.integers(0, 50))
        def delete(self, index):
            job_id = self._pick(index, *S)
            if job_id is None:
                return
            done = self.jobs[job_id].status in TERMINAL
            assert store.delete(job_id) == done  # only finished jobs can be deleted
            if done:
                self.deleted.add(job_id)
                del self.jobs[job_id]

        @precondition(lambda self: bool(self.jobs))
        @rule()
        def nothing_is_stale(self):
            assert lifecycle.reap(store, 60) == []  # a fresh heartbeat is never reaped

        # --- invariants ------------------------------------------------------------------------------------

        @invariant()
        def store_agrees_with_the_model(self):
            with store.session() as s:
                rows = {j.id: j for j in s.scalars(select(Job))}
                messages = list(s.scalars(select(OutboxEvent)))
            assert set(rows) == set(self.jobs), "a job was lost or appeared"
            for job_id, m in self.jobs.items():
                row = rows[job_id]
                assert (row.status, row.status_sequence) == (m.status, m.sequence), (row.status, m)
                if m.status == S.STARTING:
                    assert row.progress_total == 0 and row.worker_id is None
            completed = Counter(msg.job_id for msg in messages if msg.event == "completed")
            for job_id, m in self.jobs.items():
                wanted = 1 if m.status in TERMINAL and rows[job_id].webhook else 0
                assert completed[job_id] == wanted, (job_id, m, completed[job_id])
            assert len({msg.msg_id for msg in messages}) == len(messages)
            for msg in messages:
                if msg.event == "completed" and msg.job_id in self.jobs:
                    assert msg.status_sequence == self.jobs[msg.job_id].sequence

    return Lifecycle


def test_lifecycle_state_machine(db_url):
    store = JobStore(db_url)
    store.migrate()
    try:
        run_state_machine_as_test(
            make_machine(store),
            settings=settings(
                max_examples=60, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
            ),
        )
    finally:
        store.close()
