"""The job lifecycle: the only code that changes a job's status.

Every move is one guarded UPDATE (`… WHERE status IN (allowed)`, from `ltx2.domain.status.ALLOWED_MOVES`), so two
processes can never both move a job and nothing leaves a terminal state; every move bumps `status_sequence`.
Claiming is one atomic statement: `UPDATE … RETURNING` on SQLite (writes are serialised), `FOR UPDATE SKIP
LOCKED` on PostgreSQL (workers skip each other's rows).

Each move records its webhook messages in the outbox in the same transaction (`_emit`): a message can never be
lost between "status changed" and "sent", and this module alone decides what is sent. `ltx2.store.notifier`
delivers them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ltx2.domain.status import ALLOWED_MOVES, PHASE_CLAIMED, TERMINAL, JobStatus
from ltx2.store.documents import job_document
from ltx2.store.jobs import JobStore, append_log_in
from ltx2.store.models import Job, OutboxEvent, utcnow
from ltx2.store.webhooks import new_message_id, validate_events_filter

STARTING, PROCESSING = JobStatus.STARTING, JobStatus.PROCESSING
SUCCEEDED, FAILED, CANCELED = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED


def _values_for(to: JobStatus) -> dict:
    """What every move to `to` sets besides the status: one definition, so the moves cannot drift apart."""
    values: dict = {"status": to, "status_sequence": Job.status_sequence + 1}
    if to in TERMINAL:
        values.update(completed_at=utcnow(), cancel_requested=False)
    if to == SUCCEEDED:
        values.update(progress_percent=100.0, progress_phase="done")
    if to == STARTING:  # requeued: forget the worker and its progress, keep the attempt count
        values.update(
            worker_id=None,
            started_at=None,
            heartbeat_at=None,
            progress_phase=None,
            progress_step=0,
            progress_total=0,
            progress_percent=0.0,
        )
    return values


def _emit(store: JobStore, session: Session, job: Job, event: str) -> None:
    """Record one webhook message for `job` as it is now, when its webhook asked for this event."""
    if not job.webhook or event not in validate_events_filter(job.webhook_events_filter):
        return
    # One id per message, kept across its retries so receivers can drop duplicates. Status events happen once
    # per status move; log events can repeat within one, so they get fresh ids.
    msg_id = new_message_id() if event == "logs" else f"msg_{job.id}_{event}_{job.status_sequence}"
    body = json.dumps(job_document(job, store.links), separators=(",", ":"))
    session.add(
        OutboxEvent(
            job_id=job.id,
            event=event,
            msg_id=msg_id,
            status_sequence=job.status_sequence,
            url=job.webhook,
            body=body,
            created_at=utcnow(),
            attempts=0,
        )
    )


def _events_for(to: JobStatus) -> tuple[str, ...]:
    if to == PROCESSING:
        return ("start",)
    if to == SUCCEEDED:
        return ("output", "completed")
    if to in TERMINAL:
        return ("completed",)
    return ()


def _commit(store: JobStore, session: Session, wrote: bool) -> None:
    session.commit()
    if wrote:
        store.outbox_written.set()


def _move(store: JobStore, session: Session, stmt, to: JobStatus, log: str | None = None) -> Job | None:
    """Run a guarded UPDATE … RETURNING for a move to `to` and record its messages; None when nothing moved.

    `log` is appended in the same transaction, before the messages are recorded: the `completed` body then is the
    job exactly as it ends (its last log line included), not a state one line older than what GET returns.
    """
    job = session.scalar(stmt.returning(Job).execution_options(synchronize_session=False))
    if job is None:
        return None
    if log is not None:
        job = append_log_in(session, job.id, log) or job
        _emit(store, session, job, "logs")
    for event in _events_for(to):
        _emit(store, session, job, event)
    if to == STARTING:
        store._notify(session, "requeued")
    return job


def claim(store: JobStore, worker_id: str, kinds: Iterable[str]) -> Job | None:
    """Atomically move the oldest highest-priority waiting job of these kinds to processing."""
    pick = (
        select(Job.seq)
        .where(Job.status == STARTING, Job.kind.in_(list(kinds)))
        .order_by(Job.priority.desc(), Job.seq.asc())
        .limit(1)
    )
    if store.is_postgres:
        pick = pick.with_for_update(skip_locked=True)
    stmt = (
        update(Job)
        .where(Job.seq == pick.scalar_subquery(), Job.status == STARTING)
        .values(
            **_values_for(PROCESSING),
            worker_id=worker_id,
            started_at=utcnow(),
            heartbeat_at=store._clock(),
            attempt=Job.attempt + 1,
            progress_phase=PHASE_CLAIMED,
        )
    )
    with store.session() as s:
        job = _move(store, s, stmt, PROCESSING)  # the whole claimed row, in the same statement
        _commit(store, s, job is not None and bool(job.webhook))
    return job


def move(
    store: JobStore,
    job_id: str,
    to: JobStatus,
    *,
    worker_id: str | None = None,
    output: dict | None = None,
    error: str | None = None,
    error_code: str | None = None,
    log: str | None = None,
) -> bool:
    """Guarded status move (with its log line, if any); False when the job is not in a state that allows it (or
    not this worker's)."""
    to = JobStatus(to)
    values = _values_for(to)
    if output is not None:
        values["output"] = output
    if error is not None:
        values["error"] = error[:4000]
    if error_code is not None:
        values["error_code"] = error_code
    stmt = update(Job).where(Job.id == job_id, Job.status.in_(ALLOWED_MOVES[to])).values(**values)
    if worker_id is not None:
        stmt = stmt.where(Job.worker_id == worker_id)
    with store.session() as s:
        job = _move(store, s, stmt, to, log)
        _commit(store, s, job is not None and bool(job.webhook))
    return job is not None


def cancel(store: JobStore, job_id: str) -> Job | None:
    """Waiting jobs are canceled at once; running ones get the flag their worker checks every step.

    The waiting case is the CANCELED move restricted to jobs still waiting (a subset of ALLOWED_MOVES), so it
    records `completed` like every other terminal move. Returns the job as it is afterwards.
    """
    assert STARTING in ALLOWED_MOVES[CANCELED]
    with store.session() as s:
        job = _move(
            store,
            s,
            update(Job).where(Job.id == job_id, Job.status == STARTING).values(**_values_for(CANCELED)),
            CANCELED,
        )
        if job is None:
            # A running job stays running until its worker has stopped; it then moves itself to canceled.
            s.execute(update(Job).where(Job.id == job_id, Job.status == PROCESSING).values(cancel_requested=True))
        _commit(store, s, job is not None and bool(job.webhook))
    return store.get(job_id)


def reap(store: JobStore, stale_after_s: float, *, max_attempts: int = 2) -> list[tuple[str, JobStatus]]:
    """Jobs whose worker stopped heartbeating: requeued while attempts remain, else failed worker_lost.

    Each move is guarded on the stale heartbeat, so reapers on several machines cannot double-move a job.
    Returns [(job_id, new_status)].
    """
    cutoff = store._clock() - timedelta(seconds=stale_after_s)
    with store.session() as s:
        stale = s.execute(
            select(Job.id, Job.attempt, Job.cancel_requested).where(Job.status == PROCESSING, Job.heartbeat_at < cutoff)
        ).all()
    moved = []
    for job_id, attempt, cancel_flag in stale:
        extra: dict = {}
        if cancel_flag:
            target = CANCELED
        elif attempt < max_attempts:
            target = STARTING
        else:
            target = FAILED
            extra = {"error_code": "worker_lost", "error": "the worker running this job stopped responding"}
        stmt = (
            update(Job)
            .where(Job.id == job_id, Job.status == PROCESSING, Job.heartbeat_at < cutoff)
            .values(**_values_for(target), **extra)
        )
        note = {STARTING: "requeued", FAILED: "failed (worker_lost)", CANCELED: "canceled"}[target]
        with store.session() as s:
            job = _move(store, s, stmt, target, f"worker stopped responding: {note}")
            _commit(store, s, job is not None and bool(job.webhook))
        if job is not None:
            moved.append((job_id, target))
    return moved


def log(store: JobStore, job_id: str, line: str) -> None:
    """Append a log line and record the `logs` message (for webhooks that asked for it) in one transaction."""
    with store.session() as s:
        job = append_log_in(s, job_id, line)
        if job is not None:
            _emit(store, s, job, "logs")
        _commit(store, s, job is not None and bool(job.webhook))
