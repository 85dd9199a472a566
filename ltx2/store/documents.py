"""The job document (Replicate/Cog shape) that the API returns and webhooks deliver."""

from __future__ import annotations

from ltx2.domain.progress_lines import progress_line
from ltx2.domain.status import JobStatus
from ltx2.store.jobs import as_utc
from ltx2.store.links import Links
from ltx2.store.models import Job


def iso(value) -> str | None:
    value = as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value else None


def _seconds(start, end) -> float | None:
    start, end = as_utc(start), as_utc(end)
    return round((end - start).total_seconds(), 3) if start and end else None


def output_document(job: Job, links: Links) -> dict | None:
    if not job.output:
        return None
    out = dict(job.output)
    for key in ("video", "thumbnail", "metadata_file"):
        if out.get(key):
            out[f"{key}_url"] = links.signed(f"/download/{out[key]}")
    if out.get("captions"):
        out["captions_urls"] = {fmt: links.signed(f"/download/{name}") for fmt, name in out["captions"].items()}
    return out


def _logs(job: Job) -> str:
    """The job's log lines, and while it runs its progress as the last line, the way Replicate models log it
    (the clients read `prediction.progress` from there)."""
    logs = job.logs or ""
    if job.status == JobStatus.PROCESSING and job.progress_total:
        percent = float(job.progress_percent or 0)
        logs += progress_line(percent, job.progress_step, job.progress_total, job.progress_phase) + "\n"
    return logs


def job_document(job: Job, links: Links, queue_position: int | None = None) -> dict:
    prefix = "trainings" if job.kind == "train" else "predictions"
    path = f"/v1/{prefix}/{job.id}"
    get = f"{links.base_url}{path}"
    urls = {"get": get, "cancel": f"{get}/cancel", "stream": links.signed(f"{path}/stream")}
    if links.studio_url and job.kind == "generate":
        urls["web"] = f"{links.studio_url}/jobs?prediction={job.id}"
    return {
        "id": job.id,
        "model": links.model,
        "version": links.version,
        "kind": job.kind,
        "status": job.status,
        "input": job.input,
        "output": output_document(job, links),
        "data_removed": False,
        "source": "api",
        "error": job.error,
        "error_code": job.error_code,
        "logs": _logs(job),
        "progress": {
            "percent": float(job.progress_percent or 0),  # one spelling (100.0) whatever the driver returned
            "step": job.progress_step,
            "total_steps": job.progress_total,
            "phase": job.progress_phase,
            **(job.progress_data or {}),
        },
        "queue_position": queue_position,
        "attempt": job.attempt,
        "retried_from": job.retried_from,
        "cancel_requested": job.cancel_requested,
        "metrics": {
            "queue_time": _seconds(job.created_at, job.started_at),
            "predict_time": _seconds(job.started_at, job.completed_at),
            "total_time": _seconds(job.created_at, job.completed_at),
        },
        "webhook": job.webhook,
        "webhook_events_filter": job.webhook_events_filter,
        "status_sequence": job.status_sequence,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.completed_at),
        "urls": urls,
    }
