"""Response models: what each route answers, so /docs shows every response.

Documents keep unknown keys (`extra="allow"`): a job's progress carries kind-specific figures (a training's
loss curve), and a model here must never drop a field a client reads.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ltx2.domain.inputs import GenerateInput
from ltx2.store.webhooks import EVENTS


class ModelPredictionRequest(BaseModel):
    """A prediction of this server's model (POST /v1/models/{owner}/{name}/predictions, deployments)."""

    model_config = ConfigDict(extra="forbid")

    input: GenerateInput
    webhook: str | None = Field(default=None, description="URL that receives the job document on events.")
    webhook_events_filter: list[str] | None = Field(default=None, description=f"Subset of {list(EVENTS)}.")
    stream: bool | None = Field(default=None, description="Accepted for Replicate's clients: every job streams.")


CREATED_RESPONSES: dict = {
    201: {
        "description": "Created (200: an idempotent repeat of an Idempotency-Key). With `Prefer: wait[=N]` the "
        "answer waits up to N s (≤60) for the job to finish; a job still running then is answered as `starting` "
        "(Replicate's blocking semantics: not finished within the wait, poll `urls.get`)."
    }
}


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
    model: str
    version: str
    kind: str
    status: str
    input: dict[str, Any]
    output: dict[str, Any] | None = None
    data_removed: bool = False
    source: str = "api"
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
    previous: str | None = None


class ModelVersion(_Open):
    id: str
    created_at: str | None = None
    cog_version: str
    openapi_schema: dict[str, Any]


class ModelVersionPage(_Open):
    results: list[ModelVersion]
    next: str | None = None
    previous: str | None = None


class ModelDocument(_Open):
    url: str
    owner: str
    name: str
    description: str | None = None
    visibility: str
    github_url: str | None = None
    paper_url: str | None = None
    license_url: str | None = None
    run_count: int
    cover_image_url: str | None = None
    default_example: dict[str, Any] | None = None
    latest_version: ModelVersion | None = None


class WebhookSecret(_Open):
    key: str = Field(description="The Standard Webhooks signing secret (whsec_…) of every webhook this server sends.")


class FileDocument(_Open):
    """Replicate's File object, plus `kind`, `sha256`, `original_name` and `meta` (the decoded size or length)."""

    id: str
    name: str
    content_type: str
    size: int
    etag: str
    checksums: dict[str, str]
    metadata: dict[str, Any] = {}
    created_at: str | None = None
    expires_at: str | None = None
    urls: dict[str, str]
    kind: str
    sha256: str
    original_name: str | None = None
    meta: dict[str, Any] = {}


class FileList(_Open):
    results: list[FileDocument]
    next: str | None = None
    previous: str | None = None


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
    weights: str | None = Field(
        None,
        description="Which weights the workers run: verified (real, `avatar models download`), configured (real, "
        "AVATAR_CHECKPOINT), tiny (the test checkpoint: noise) or mixed; before a worker is ready, what this "
        "host would load. Only with a valid API key (or no keys set)",
    )
    weights_note: str | None = None
    workers: list[WorkerDocument] | None = Field(None, description="Only with a valid API key (or no keys set)")
    queue: Queue


# --- the seed's paths ------------------------------------------------------------------------------------


class SeedAccepted(_Open):
    job_id: str
    status: str
    profile: str | None = Field(None, description="The face profile used (use_trained_profile)")
    message: str | None = None


class SeedTrainAccepted(SeedAccepted):
    status: str = Field(description="The seed's value for a started training: training_started")
    person_name: str
    training_steps: int
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
    reference_images: int = Field(description="Seed name: uploaded photos kept (reference and training)")
    cached_videos: int = Field(description="Seed name: videos in outputs/ (same as videos)")
    videos: int
    outputs_bytes: int
    temp_files: int
    temp_bytes: int
    uploads: int
    uploads_bytes: int
    uploads_in_use: int
    uploads_unused: int
    profile_photos: int
    uploads_folder: str
    profiles_folder: str
    retention_days: float | None = None
    jobs: dict[str, int]
    trash: int = Field(description="Deleted jobs waiting in the trash (restorable)")
    trash_bytes: int
    trash_days: float = Field(description="Days a deleted job stays restorable (0: deletes are final)")
    disk_free_bytes: int


class Cleaned(_Open):
    status: str = Field(description="success (the seed's value)")
    deleted_count: int = Field(description="Seed name: files deleted (same as files_removed)")
    files_removed: int
    jobs_deleted: int
    uploads_removed: int = 0
    trash_days: float = Field(description="> 0: the deleted jobs can be restored (GET /v1/trash) for this many days")


class TrashEntry(_Open):
    id: str
    kind: str
    status: str
    text: str | None = None
    created_at: str
    deleted_at: str
    expires_at: str = Field(description="When the sweeper deletes it for good")
    files: list[str]
    bytes: int


class TrashList(_Open):
    results: list[TrashEntry]
    trash_days: float


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
    has_training: bool = Field(description="A training is queued or running, or one has finished (or a profile exists)")
    job_id: str | None = Field(
        None, description="The training the fields below describe (null: none, or `avatar train`)"
    )
    person_name: str | None = None
    status: str = Field(description="queued, processing, completed, failed, cancelled; idle when there is none")
    current_step: int
    training_steps: int | None = None
    progress: float
    current_accuracy: None = Field(
        None,
        description="Always null: the seed reported an invented accuracy; a face training has a loss instead "
        "(loss, smoothed_loss and validation_loss in /training-progress/{job_id})",
    )
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
    training_steps: int | None = Field(None, description="Seed name: the steps asked for")
    phase: str | None = None
    loss: float | None = None
    smoothed_loss: float | None = None
    validation_loss: float | None = None
    eta_seconds: float | None = None
    message: str | None = None
