"""Response models: what each route answers, so /docs shows every response.

Documents keep unknown keys (`extra="allow"`): a job's progress carries kind-specific figures (a training's
loss curve), and a model here must never drop a field a client reads.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Progress(_Open):
    """`step`/`total_steps` count the phase in front (denoising steps, or frames while decoding and encoding);
    `percent` covers the whole job. Generation adds `label`, `elapsed_s`, `eta_s`, `frames_decoded`,
    `frames_encoded`, `frames_total`; a finished one keeps its measured `phase_seconds`."""

    percent: float = 0.0
    step: int = 0
    total_steps: int = 0
    phase: str | None = None
    label: str | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None


class JobMetrics(_Open):
    queue_time: float | None = None
    predict_time: float | None = None
    total_time: float | None = None


class JobDocument(_Open):
    """A prediction or training (Replicate/Cog shape); webhooks deliver the same document."""

    id: str
    kind: str
    status: str
    input: dict[str, Any]
    output: dict[str, Any] | None = None
    error: str | None = None
    error_code: str | None = None
    logs: str = ""
    progress: Progress
    queue_position: int | None = None
    attempt: int = 0
    retried_from: str | None = None
    cancel_requested: bool = False
    metrics: JobMetrics
    webhook: str | None = None
    webhook_events_filter: list[str] | None = None
    status_sequence: int = 0
    created_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    urls: dict[str, str]


class JobPage(_Open):
    results: list[JobDocument]
    next: str | None = None


class FileDocument(_Open):
    id: str
    kind: str
    content_type: str
    size: int
    sha256: str
    original_name: str | None = None
    meta: dict[str, Any] = {}
    created_at: str | None = None
    urls: dict[str, str]


class ProfileDocument(_Open):
    name: str
    trigger: str
    photos: int
    best_photo_url: str
    preview_url: str | None = None
    steps: int
    final_loss: float | None = None
    validation_loss: float | None = None
    training_job: str | None = None
    created_at: str | None = None


class ProfileList(_Open):
    results: list[ProfileDocument]


class WorkerDocument(_Open):
    id: str
    host: str
    pid: int
    device: str
    state: str
    job_id: str | None = None
    model: dict[str, Any] = {}
    error: str | None = None
    alive: bool
    started_at: str
    last_heartbeat: str


class WorkerList(_Open):
    workers: list[WorkerDocument]
    alive: int
    stale_after_s: float


class Limits(_Open):
    max_seconds: float
    words_per_minute: float
    default_fps: float
    segment_seconds: float
    max_script_seconds: float
    max_segments: int
    max_text_chars: int
    max_upload_mb: int
    min_speed: float
    max_speed: float
    min_side: int
    max_side: int
    side_multiple: int
    min_segment_seconds: float
    max_segment_seconds: float
    max_crossfade_s: float
    min_photos: int
    max_photos: int
    max_photo_mb: int


class Queue(_Open):
    waiting: int
    processing: int


class Health(_Open):
    status: str
    state: str
    workers: int
    queue: Queue
    model: str | None = None
    tiny_checkpoint: bool | None = None


class HealthCheck(_Open):
    status: str
    workers: list[WorkerDocument] | None = Field(None, description="Only with a valid API key (or no keys set)")
    queue: Queue


# --- the seed's paths ------------------------------------------------------------------------------------


class SeedAccepted(_Open):
    job_id: str
    status: str


class SeedTrainAccepted(SeedAccepted):
    person_name: str
    message: str


class SeedStatus(_Open):
    job_id: str
    status: str
    progress: float
    percent: float = 0.0
    phase: str | None = None
    phase_label: str | None = None
    step: int = 0
    total_steps: int = 0
    frames_decoded: int | None = None
    frames_encoded: int | None = None
    frames_total: int | None = None
    elapsed_s: float | None = None
    eta_s: float | None = None
    message: str | None = None
    queue_position: int | None = None
    video_path: str | None = None
    download_url: str | None = None
    error: str | None = None
    created_at: str


class WorkspaceStatus(_Open):
    videos: int
    outputs_bytes: int
    temp_files: int
    temp_bytes: int
    uploads: int
    uploads_bytes: int
    jobs: dict[str, int]
    disk_free_bytes: int


class Cleaned(_Open):
    status: str
    files_removed: int
    jobs_deleted: int


class Reset(_Open):
    status: str
    canceled_jobs: int
    files_removed: int


class ActiveTraining(_Open):
    job_id: str
    person_name: str | None = None
    status: str
    progress: float


class TrainingStatus(_Open):
    trained_people: list[str]
    profiles: list[ProfileDocument]
    active_trainings: list[ActiveTraining]
    is_training: bool


class TrainingProgress(_Open):
    job_id: str
    person_name: str | None = None
    status: str
    progress: float
    current_step: int
    total_steps: int | None = None
    phase: str | None = None
    loss: float | None = None
    smoothed_loss: float | None = None
    validation_loss: float | None = None
    eta_seconds: float | None = None
    message: str | None = None
