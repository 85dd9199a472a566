"""The job store: the single source of truth and the queue (SQLite by default, PostgreSQL to scale out).

Every status move is one guarded UPDATE (`… WHERE status IN (allowed)`), so two processes can never both
move a job, and nothing leaves a terminal state. Claiming is one atomic statement: `UPDATE … RETURNING` on
SQLite (writes are serialised), `FOR UPDATE SKIP LOCKED` on PostgreSQL (workers skip each other's rows).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, delete, event, func, or_, select, text, update
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ltx2.store.models import (
    PROCESSING,
    STARTING,
    SUCCEEDED,
    TERMINAL,
    FileRecord,
    Job,
    OutboxEvent,
    Profile,
    WebhookDelivery,
    WorkerRecord,
    utcnow,
)

MAX_LOG_CHARS = 64_000
NOTIFY_CHANNEL = "avatar_jobs"  # PostgreSQL: NOTIFY on every job that becomes claimable; idle workers LISTEN
MIGRATE_LOCK_KEY = zlib.crc32(b"avatar-generator:migrate")  # pg_advisory_lock key held around `upgrade head`


class IdempotencyConflict(Exception):
    """The idempotency key was used before with a different request."""

    def __init__(self, existing: Job):
        super().__init__("idempotency key already used for a different request")
        self.existing = existing


def new_id() -> str:
    return secrets.token_hex(10)


def as_utc(value: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes even for timezone-aware columns.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # noqa: ANN001
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # PostgreSQL (postgresql+psycopg://…): timezone-aware timestamps come back as such; pre-ping drops
    # connections the server closed (restart, idle timeout); recycle keeps them from outliving NAT/proxies.
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_recycle=1800)


@contextlib.contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """Only one process at a time runs `upgrade head`; the others wait, then find nothing to do.

    PostgreSQL: a session-level advisory lock on its own connection (every machine sees it). SQLite: an
    exclusive file lock beside the database file (SQLite is one machine's anyway).
    """
    if url.startswith("sqlite"):
        database = make_url(url).database
        if not database or database == ":memory:":
            yield
            return
        import fcntl

        lock_path = Path(database).with_name(Path(database).name + ".migrate-lock")
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATE_LOCK_KEY})
                connection.commit()
            try:
                yield
            finally:
                if engine.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATE_LOCK_KEY})
                    connection.commit()
    finally:
        engine.dispose()


def migrate(url: str) -> None:
    """Bring the schema to the newest Alembic revision (idempotent; safe from several processes at once)."""
    from alembic import command
    from alembic.config import Config

    from ltx2.state import check_database

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    with _migration_lock(url):
        check_database(url)  # inside the lock: another process's half-created file is never judged
        command.upgrade(config, "head")


def append_log_in(session: Session, job_id: str, line: str) -> Job | None:
    """Append a log line inside the caller's transaction (the lifecycle adds its `logs` message in the same one)."""
    # FOR UPDATE on PostgreSQL (SQLite serialises writers anyway): concurrent appends never lose a line.
    job = session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None:
        return None
    logs = (job.logs or "") + line.rstrip("\n") + "\n"
    if len(logs) > MAX_LOG_CHARS:  # keep the newest lines; the start is the least useful part
        logs = "…\n" + logs[-MAX_LOG_CHARS:].split("\n", 1)[-1]
    job.logs = logs
    return job


class JobStore:
    def __init__(self, url: str, *, base_url: str = ""):
        self.url = url
        self.base_url = base_url  # webhook bodies are job documents with absolute links
        # Set after a transaction wrote outbox messages, so this process's notifier sends them at once.
        self.outbox_written = threading.Event()
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.engine = make_engine(url)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._listener = None  # PostgreSQL: a dedicated autocommit psycopg connection that LISTENs

    def migrate(self) -> None:
        migrate(self.url)

    def close(self) -> None:
        self._close_listener()
        self.engine.dispose()

    def _clock(self):
        """The time heartbeats are written with and compared against. PostgreSQL: the database server's own
        clock, so workers and reapers on machines whose clocks disagree still agree on what is stale."""
        return func.now() if self.is_postgres else utcnow()

    # --- waking idle workers (PostgreSQL LISTEN/NOTIFY) ---------------------------------------------------

    @property
    def can_listen(self) -> bool:
        """True on PostgreSQL with psycopg 3: idle workers can wait for NOTIFY instead of polling quickly."""
        if not self.is_postgres or self.engine.dialect.driver != "psycopg":
            return False
        try:
            import psycopg  # noqa: F401
        except ImportError:  # pragma: no cover - psycopg is a dependency
            return False
        return True

    def _notify(self, session: Session, kind: str) -> None:
        """Queue a NOTIFY in this transaction: PostgreSQL delivers it on commit, and drops it on rollback."""
        if self.is_postgres:
            session.execute(text("SELECT pg_notify(:channel, :kind)"), {"channel": NOTIFY_CHANNEL, "kind": kind})

    def _close_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.close()
            self._listener = None

    def wait_for_job(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Wait up to `timeout` s for a job to become claimable; True when woken by a NOTIFY.

        On PostgreSQL with psycopg this LISTENs on its own connection (notifications that arrived while the
        caller was busy are kept by the connection and wake the next call at once); elsewhere, or when the
        listening connection fails, it just waits. `stop` being set ends the wait within half a second.
        """
        stop = stop or threading.Event()
        if not self.can_listen:
            stop.wait(timeout)
            return False
        deadline = time.monotonic() + timeout
        try:
            if self._listener is None:
                import psycopg

                conninfo = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
                self._listener = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
                self._listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                for _ in self._listener.notifies(timeout=min(left, 0.5), stop_after=1):
                    return True
        except Exception:  # noqa: BLE001 - the database went away: fall back to polling, reconnect next time
            self._close_listener()
            stop.wait(max(0.0, deadline - time.monotonic()))
        return False

    def session(self) -> Session:
        return self.sessions()

    # --- creating and reading ----------------------------------------------------------------------------

    def create(
        self,
        kind: str,
        input: dict,
        *,
        webhook: str | None = None,
        webhook_events_filter: list[str] | None = None,
        idempotency_key: str | None = None,
        priority: int = 0,
        retried_from: str | None = None,
    ) -> tuple[Job, bool]:
        """Insert a job waiting to start. Returns (job, created); an idempotent repeat returns the first job."""
        job = Job(
            id=new_id(),
            kind=kind,
            status=STARTING,
            input=input,
            webhook=webhook,
            webhook_events_filter=webhook_events_filter,
            idempotency_key=idempotency_key,
            priority=priority,
            retried_from=retried_from,
            created_at=utcnow(),
            status_sequence=0,
            logs="",
        )
        with self.session() as s:
            s.add(job)
            try:
                self._notify(s, kind)
                s.commit()
                return job, True
            except IntegrityError:
                s.rollback()
                if idempotency_key is None:
                    raise
        existing = self.by_idempotency_key(idempotency_key)
        if existing is None:  # the key's owner was deleted in between
            return self.create(
                kind,
                input,
                webhook=webhook,
                webhook_events_filter=webhook_events_filter,
                priority=priority,
                retried_from=retried_from,
            )
        # The webhook is part of the request: a retry that adds or changes one must not silently lose it.
        if (existing.kind, existing.input, existing.webhook, existing.webhook_events_filter) != (
            kind,
            input,
            webhook,
            webhook_events_filter,
        ):
            raise IdempotencyConflict(existing)
        return existing, False

    def by_idempotency_key(self, key: str) -> Job | None:
        with self.session() as s:
            return s.scalar(select(Job).where(Job.idempotency_key == key))

    def get(self, job_id: str) -> Job | None:
        with self.session() as s:
            return s.scalar(select(Job).where(Job.id == job_id))

    def queue_position(self, job: Job) -> int | None:
        """1-based place among jobs waiting to start, or None once it has started."""
        if job.status != STARTING:
            return None
        with self.session() as s:
            ahead = s.scalar(
                select(func.count())
                .select_from(Job)
                .where(
                    Job.status == STARTING,
                    or_(Job.priority > job.priority, (Job.priority == job.priority) & (Job.seq < job.seq)),
                )
            )
        return int(ahead or 0) + 1

    def list(
        self,
        *,
        status: Iterable[str] | None = None,
        kind: str | None = None,
        cursor: int | None = None,
        limit: int = 50,
    ) -> tuple[list[Job], int | None]:
        """Newest first. `cursor` is the seq to continue below; returns (jobs, next cursor or None)."""
        query = select(Job).order_by(Job.seq.desc()).limit(limit + 1)
        if status:
            query = query.where(Job.status.in_(list(status)))
        if kind:
            query = query.where(Job.kind == kind)
        if cursor is not None:
            query = query.where(Job.seq < cursor)
        with self.session() as s:
            rows = list(s.scalars(query))
        more = len(rows) > limit
        rows = rows[:limit]
        return rows, (rows[-1].seq if more and rows else None)

    def counts(self) -> dict[str, int]:
        with self.session() as s:
            rows = s.execute(select(Job.status, func.count()).group_by(Job.status)).all()
        return {status: int(n) for status, n in rows}

    def finished_seconds(self) -> dict[str, float]:
        """Seconds finished jobs spent running, by final status (every final status present)."""
        with self.session() as s:
            rows = s.execute(
                select(Job.status, Job.started_at, Job.completed_at).where(
                    Job.status.in_(TERMINAL), Job.started_at.is_not(None)
                )
            ).all()
        totals = {str(status): 0.0 for status in TERMINAL}
        for status, started, completed in rows:
            totals[status] += (as_utc(completed) - as_utc(started)).total_seconds()
        return totals

    def finished_count(self) -> int:
        with self.session() as s:
            return int(s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(TERMINAL))) or 0)

    # --- the queue -------------------------------------------------------------------------------------

    def heartbeat(self, job_id: str, worker_id: str) -> bool:
        """Returns False when the job is no longer this worker's (reaped, canceled, deleted)."""
        with self.session() as s:
            n = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == PROCESSING)
                .values(heartbeat_at=self._clock())
            ).rowcount
            s.commit()
        return n == 1

    def set_progress(
        self,
        job_id: str,
        *,
        phase: str,
        step: int,
        total: int,
        percent: float,
        data: dict | None = None,
        worker_id: str | None = None,
    ) -> None:
        values = dict(
            progress_phase=phase,
            progress_step=step,
            progress_total=total,
            progress_percent=round(percent, 2),
            heartbeat_at=self._clock(),
        )
        if data is not None:
            values["progress_data"] = data
        stmt = update(Job).where(Job.id == job_id, Job.status == PROCESSING)
        if worker_id is not None:  # a worker that lost the job (reaped and requeued) must not touch it
            stmt = stmt.where(Job.worker_id == worker_id)
        with self.session() as s:
            s.execute(stmt.values(**values))
            s.commit()

    def append_log(self, job_id: str, line: str) -> None:
        with self.session() as s:
            append_log_in(s, job_id, line)
            s.commit()

    def cancel_requested(self, job_id: str) -> bool:
        with self.session() as s:
            row = s.execute(select(Job.cancel_requested, Job.status).where(Job.id == job_id)).first()
        return row is None or bool(row[0]) or row[1] != PROCESSING

    def delete(self, job_id: str) -> bool:
        with self.session() as s:
            n = s.execute(delete(Job).where(Job.id == job_id, Job.status.in_(TERMINAL))).rowcount
            s.commit()
        return n == 1

    # --- files -----------------------------------------------------------------------------------------

    def add_file(
        self,
        *,
        kind: str,
        content_type: str,
        path: str,
        sha256: str,
        size: int,
        original_name: str | None = None,
        meta: dict | None = None,
    ) -> FileRecord:
        record = FileRecord(
            id=new_id(),
            kind=kind,
            content_type=content_type,
            path=path,
            sha256=sha256,
            size=size,
            original_name=original_name,
            meta=meta or {},
            created_at=utcnow(),
        )
        with self.session() as s:
            s.add(record)
            s.commit()
        return record

    def get_file(self, file_id: str) -> FileRecord | None:
        with self.session() as s:
            return s.get(FileRecord, file_id)

    def delete_file(self, file_id: str) -> None:
        with self.session() as s:
            s.execute(delete(FileRecord).where(FileRecord.id == file_id))
            s.commit()

    # --- face profiles ---------------------------------------------------------------------------------

    def add_profile(self, profile: Profile) -> bool:
        """Insert; False when the name is taken (the caller then cleans up its files)."""
        with self.session() as s:
            s.add(profile)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                return False
        return True

    def get_profile(self, name: str) -> Profile | None:
        with self.session() as s:
            return s.get(Profile, name)

    def list_profiles(self) -> list[Profile]:
        with self.session() as s:
            return list(s.scalars(select(Profile).order_by(Profile.created_at)))

    def delete_profile(self, name: str) -> Profile | None:
        with self.session() as s:
            profile = s.get(Profile, name)
            if profile is not None:
                s.delete(profile)
                s.commit()
            return profile

    def recent_timings(self, kind: str, limit: int = 200) -> list[dict]:
        """The measured phase timings (`progress_data` with `phase_seconds`) of the last `limit` jobs of `kind`
        that succeeded, newest first: what the worker weighs a new job's phases and ETA by."""
        query = (
            select(Job.progress_data)
            .where(Job.kind == kind, Job.status == SUCCEEDED)
            .order_by(Job.seq.desc())
            .limit(limit)
        )
        with self.session() as s:
            rows = s.scalars(query)
            return [d for d in rows if isinstance(d, dict) and isinstance(d.get("phase_seconds"), dict)]

    def active_jobs(self, kind: str) -> list[Job]:
        with self.session() as s:
            return list(s.scalars(select(Job).where(Job.kind == kind, Job.status.in_((STARTING, PROCESSING)))))

    # --- webhooks and workers --------------------------------------------------------------------------

    def log_delivery(
        self,
        job_id: str,
        *,
        event: str,
        msg_id: str,
        attempt: int,
        ok: bool,
        status_code: int | None,
        error: str | None,
    ) -> None:
        with self.session() as s:
            if s.scalar(select(Job.seq).where(Job.id == job_id)) is None:
                return
            s.add(
                WebhookDelivery(
                    job_id=job_id,
                    event=event,
                    msg_id=msg_id,
                    attempt=attempt,
                    ok=ok,
                    status_code=status_code,
                    error=error,
                    at=utcnow(),
                )
            )
            s.commit()

    def worker_seen(
        self,
        worker_id: str,
        *,
        state: str,
        device: str = "",
        model: dict | None = None,
        job_id: str | None = None,
        error: str | None = None,
        pid: int = 0,
    ) -> None:
        with self.session() as s:
            row = s.get(WorkerRecord, worker_id)
            if row is None:
                row = WorkerRecord(
                    id=worker_id,
                    host=socket.gethostname(),
                    pid=pid,
                    device=device,
                    model=model or {},
                    state=state,
                    started_at=utcnow(),
                )
                s.add(row)
            row.state, row.job_id, row.error, row.heartbeat_at = state, job_id, error, self._clock()
            if device:
                row.device = device
            if model is not None:
                row.model = model
            if pid:
                row.pid = pid
            s.commit()

    def workers(self, *, alive_within_s: float | None = None) -> list[WorkerRecord]:
        query = select(WorkerRecord).order_by(WorkerRecord.started_at)
        if alive_within_s is not None:
            query = query.where(WorkerRecord.heartbeat_at >= self._clock() - timedelta(seconds=alive_within_s))
        with self.session() as s:
            return list(s.scalars(query))

    def clear_all(self) -> None:
        """Master reset: every job, file record, delivery and profile (after work was canceled)."""
        with self.session() as s:
            s.execute(delete(WebhookDelivery))
            # Messages already sent go; the `completed` of jobs the reset just canceled is still delivered.
            s.execute(delete(OutboxEvent).where(OutboxEvent.delivered_at.is_not(None)))
            s.execute(delete(Job))
            s.execute(delete(FileRecord))
            s.execute(delete(Profile))
            s.commit()
