"""Tables of the job store. Schema changes go through Alembic (ltx2/store/migrations)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ltx2.domain.status import STATUSES, JobStatus  # noqa: F401 - STATUSES: re-exported


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


# Short names for the statuses (ltx2.domain.status); terminal states are never left.
STARTING, PROCESSING = JobStatus.STARTING, JobStatus.PROCESSING
SUCCEEDED, FAILED, CANCELED = JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED
TERMINAL = (SUCCEEDED, FAILED, CANCELED)


class Job(Base):
    __tablename__ = "jobs"

    # Creation order: the claim order's tie-break and a stable cursor for listing.
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    status: Mapped[str] = mapped_column(String(16), default=STARTING)
    input: Mapped[dict] = mapped_column(JSON, default=dict)
    output: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    logs: Mapped[str] = mapped_column(Text, default="")
    progress_phase: Mapped[str | None] = mapped_column(String(64), nullable=True)
    progress_step: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    progress_percent: Mapped[float] = mapped_column(Float, default=0.0)
    # Kind-specific live figures, e.g. a training's loss, smoothed loss, ETA and loss curve.
    progress_data: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    retried_from: Mapped[str | None] = mapped_column(String(32), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    worker_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    status_sequence: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    webhook: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_events_filter: Mapped[list | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    __table_args__ = (
        # The claim query: oldest highest-priority job waiting to start.
        Index("ix_jobs_claim", "status", "priority", "seq"),
    )


class FileRecord(Base):
    """An upload's row (its bytes: ltx2.services.uploads.StoredFile)."""

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # image | audio
    content_type: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    path: Mapped[str] = mapped_column(Text)  # relative to the uploads folder
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    meta: Mapped[dict] = mapped_column(JSON, default=dict)
    # What the client attached (POST /v1/files `metadata`, a JSON object); returned as the File's `metadata`.
    user_metadata: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class FileOwner(Base):
    """Who keeps an upload: a job that uses it, or a face profile trained from it (an upload without a row here is
    owned by nobody yet). A file goes when its last owner goes; clean-workspace removes the unowned ones."""

    __tablename__ = "file_owners"

    file_id: Mapped[str] = mapped_column(String(32), ForeignKey("files.id", ondelete="CASCADE"), primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # job | profile
    owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_file_owners_owner", "owner_kind", "owner_id"),)


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32), ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(16))
    msg_id: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Profile(Base):
    """A trained face profile: a LoRA plus the photos it was trained on."""

    __tablename__ = "profiles"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    trigger: Mapped[str] = mapped_column(String(64))
    folder: Mapped[str] = mapped_column(Text)  # relative to the profiles folder
    lora: Mapped[str] = mapped_column(Text)  # file name inside the folder
    photos: Mapped[list] = mapped_column(JSON, default=list)  # file names inside the folder
    best_photo: Mapped[str] = mapped_column(Text)
    steps: Mapped[int] = mapped_column(Integer)
    final_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    validation_loss: Mapped[float | None] = mapped_column(Float, nullable=True)
    training_job: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkerRecord(Base):
    """What a worker process (ltx2.worker.main.Worker) last reported about itself."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(64))
    model: Mapped[dict] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))  # a WorkerState
    job_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class OutboxEvent(Base):
    """A webhook message recorded in the same transaction as the status move that caused it.

    The notifier (ltx2.store.notifier) delivers it; a row stays until delivered or given up, so a process that dies
    between "status changed" and "message sent" loses nothing: another notifier takes the row once its lease ends.
    `body` is the job document at the time of the move, so every retry sends the same bytes under the same id.
    No foreign key: a job deleted (or reset) right after finishing still has its `completed` message sent.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32), index=True)
    event: Mapped[str] = mapped_column(String(16))
    msg_id: Mapped[str] = mapped_column(String(128), unique=True)
    status_sequence: Mapped[int] = mapped_column(Integer)
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    ok: Mapped[bool | None] = mapped_column(Boolean, nullable=True)

    __table_args__ = (
        # The notifier's scan: messages not yet delivered, oldest first.
        Index("ix_outbox_pending", "delivered_at", "id"),
    )
