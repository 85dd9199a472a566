"""Health (open), Cog-style health-check, the workers list and Prometheus metrics."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import func, select

from ltx2.api import deps
from ltx2.jobs.models import STARTING, STATUSES, TERMINAL, Job, utcnow
from ltx2.jobs.store import as_utc

open_router = APIRouter(tags=["operations"])
router = APIRouter(tags=["operations"])


def worker_summary(request: Request) -> tuple[str, list[dict], dict]:
    store, settings = deps.store(request), deps.settings(request)
    alive = store.workers(alive_within_s=settings.stale_after_s)
    everyone = store.workers()
    counts = store.counts()
    queue = {"waiting": counts.get(STARTING, 0), "processing": counts.get("processing", 0)}
    alive_ids = {w.id for w in alive}
    ready = [w for w in alive if w.state == "ready"]
    busy = [w for w in alive if w.state == "busy"]
    starting = [w for w in alive if w.state == "starting"]
    failed = [w for w in everyone if w.state == "failed"]
    if ready:
        state = "READY"
    elif busy:
        state = "BUSY"
    elif starting:
        state = "STARTING"
    elif failed and not alive:
        state = "SETUP_FAILED"
    elif not everyone:
        state = "STARTING"  # no worker has registered yet
    else:
        state = "DEFUNCT"
    workers = [worker_document(w, w.id in alive_ids) for w in everyone if w.id in alive_ids or w.state == "failed"]
    return state, workers, queue


def worker_document(w, alive: bool) -> dict:
    return {"id": w.id, "host": w.host, "pid": w.pid, "device": w.device, "state": w.state, "job_id": w.job_id,
            "model": w.model, "error": w.error, "alive": alive,
            "started_at": as_utc(w.started_at).isoformat(), "last_heartbeat": as_utc(w.heartbeat_at).isoformat()}


@router.get("/v1/workers", summary="Every worker process that reported itself, on any machine")
def list_workers(
    request: Request,
    all_: bool = Query(False, alias="all", description="Also workers gone for more than an hour"),
):
    """Workers alive now (heartbeat within AVATAR_STALE_AFTER_S) and, unless `all=true`, those that stopped or
    were lost within the last hour — newest first. A worker killed without warning stays in its last state
    (e.g. `busy`) with `alive: false`."""
    store, settings = deps.store(request), deps.settings(request)
    alive_ids = {w.id for w in store.workers(alive_within_s=settings.stale_after_s)}
    recent = utcnow() - timedelta(hours=1)
    rows = [w for w in store.workers() if all_ or w.id in alive_ids or as_utc(w.heartbeat_at) >= recent]
    rows.sort(key=lambda w: as_utc(w.started_at), reverse=True)
    docs = [worker_document(w, w.id in alive_ids) for w in rows]
    return {"workers": docs, "alive": sum(d["alive"] for d in docs), "stale_after_s": settings.stale_after_s}


@router.get("/v1/limits", summary="What this server accepts: clip and script lengths, speech rate, uploads")
def limits(request: Request):
    """The numbers a client needs to plan a clip or a script the way this server will (the studio's Create page
    shows its segment plan with them)."""
    from ltx2.jobs.inputs import MAX_TEXT_CHARS

    settings = deps.settings(request)
    return {
        "max_seconds": settings.max_seconds,
        "words_per_minute": settings.words_per_minute,
        "default_fps": settings.default_fps,
        "segment_seconds": settings.segment_seconds,
        "max_script_seconds": settings.max_script_seconds,
        "max_segments": settings.max_segments,
        "max_text_chars": MAX_TEXT_CHARS,
        "max_upload_mb": settings.max_upload_mb,
    }


@open_router.get("/health", summary="Seed API: is the server up")
def health(request: Request):
    state, workers, queue = worker_summary(request)
    model = next((w["model"] for w in workers if w["alive"] and w["model"]), {})
    return {"status": "healthy", "state": state, "workers": sum(w["alive"] for w in workers), "queue": queue,
            "model": model.get("family"), "tiny_checkpoint": model.get("tiny")}


@open_router.get("/health-check", summary="Cog-style state: STARTING, READY, BUSY, SETUP_FAILED, DEFUNCT")
def health_check(request: Request):
    state, workers, queue = worker_summary(request)
    if not deps.has_key(request):
        # Open to all: only what a load balancer needs. Hosts, pids, paths, job ids and errors need the key.
        return {"status": state, "queue": queue}
    return {"status": state, "workers": workers, "queue": queue}


class _JobsCollector:
    def __init__(self, store):
        self.store = store

    def collect(self):
        counts = self.store.counts()
        by_status = GaugeMetricFamily("avatar_jobs", "Jobs in the store by status", labels=["status"])
        for status in STATUSES:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        yield GaugeMetricFamily("avatar_queue_depth", "Jobs waiting for a worker", value=counts.get(STARTING, 0))
        seconds = CounterMetricFamily("avatar_job_seconds", "Seconds finished jobs spent running",
                                      labels=["status"])
        with self.store.session() as s:
            rows = s.execute(
                select(Job.status, Job.started_at, Job.completed_at)
                .where(Job.status.in_(TERMINAL), Job.started_at.is_not(None))
            ).all()
        totals = {status: 0.0 for status in TERMINAL}
        for status, started, completed in rows:
            totals[status] += (as_utc(completed) - as_utc(started)).total_seconds()
        for status, total in totals.items():
            seconds.add_metric([status], total)
        yield seconds
        with self.store.session() as s:
            n = s.scalar(select(func.count()).select_from(Job).where(Job.status.in_(TERMINAL)))
        yield CounterMetricFamily("avatar_jobs_finished", "Jobs that reached a final state", value=n or 0)


@router.get("/metrics", summary="Prometheus metrics")
def metrics(request: Request):
    registry = CollectorRegistry()
    registry.register(_JobsCollector(deps.store(request)))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
