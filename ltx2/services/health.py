"""Operations: the Cog-style health state, the workers list, the planning limits, Prometheus metrics."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from ltx2.domain import limits as L
from ltx2.domain.limits import MAX_TEXT_CHARS
from ltx2.domain.status import STATUSES, JobStatus, WorkerState
from ltx2.settings import Settings
from ltx2.store.jobs import JobStore, as_utc
from ltx2.store.models import utcnow


def worker_document(w, alive: bool) -> dict:
    return {
        "id": w.id,
        "host": w.host,
        "pid": w.pid,
        "device": w.device,
        "state": w.state,
        "job_id": w.job_id,
        "model": w.model,
        "error": w.error,
        "alive": alive,
        "started_at": as_utc(w.started_at).isoformat(),
        "last_heartbeat": as_utc(w.heartbeat_at).isoformat(),
    }


def worker_summary(store: JobStore, settings: Settings) -> tuple[str, list[dict], dict]:
    alive = store.workers(alive_within_s=settings.stale_after_s)
    everyone = store.workers()
    counts = store.counts()
    queue = {"waiting": counts.get(JobStatus.STARTING, 0), "processing": counts.get(JobStatus.PROCESSING, 0)}
    alive_ids = {w.id for w in alive}
    ready = [w for w in alive if w.state == WorkerState.READY]
    busy = [w for w in alive if w.state == WorkerState.BUSY]
    starting = [w for w in alive if w.state == WorkerState.STARTING]
    failed = [w for w in everyone if w.state == WorkerState.FAILED]
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
    workers = [
        worker_document(w, w.id in alive_ids) for w in everyone if w.id in alive_ids or w.state == WorkerState.FAILED
    ]
    return state, workers, queue


def health(store: JobStore, settings: Settings) -> dict:
    state, workers, queue = worker_summary(store, settings)
    model = next((w["model"] for w in workers if w["alive"] and w["model"]), {})
    return {
        "status": "healthy",
        "state": state,
        "workers": sum(w["alive"] for w in workers),
        "queue": queue,
        "model": model.get("family"),
        "tiny_checkpoint": model.get("tiny"),
    }


WEIGHTS_NOTE = {
    "verified": "real LTX-2 weights, verified by `avatar models download` (models/verified.json)",
    "configured": "real LTX-2 weights set by AVATAR_CHECKPOINT",
    "tiny": "the tiny test checkpoint (random transformer: motion and sound are noise)",
    "mixed": "workers run different weight sets (see each worker's model)",
}


def weights_source(workers: list[dict], settings: Settings) -> str:
    """What the ready workers report; before any is ready, what this host's settings would load."""
    seen = {w["model"].get("weights_source") for w in workers if w["alive"] and w.get("model")} - {None}
    if not seen:
        return settings.weights_source
    return seen.pop() if len(seen) == 1 else "mixed"


def health_check(store: JobStore, settings: Settings, *, detail: bool = True) -> dict:
    state, workers, queue = worker_summary(store, settings)
    if not detail:
        # Open to all: only what a load balancer needs. Hosts, pids, paths, job ids and errors need the key.
        return {"status": state, "queue": queue}
    source = weights_source(workers, settings)
    return {
        "status": state,
        "weights": source,
        "weights_note": WEIGHTS_NOTE[source],
        "workers": workers,
        "queue": queue,
    }


def workers(store: JobStore, settings: Settings, all_: bool) -> dict:
    alive_ids = {w.id for w in store.workers(alive_within_s=settings.stale_after_s)}
    recent = utcnow() - timedelta(hours=1)
    rows = [w for w in store.workers() if all_ or w.id in alive_ids or as_utc(w.heartbeat_at) >= recent]
    rows.sort(key=lambda w: as_utc(w.started_at), reverse=True)
    docs = [worker_document(w, w.id in alive_ids) for w in rows]
    return {"workers": docs, "alive": sum(d["alive"] for d in docs), "stale_after_s": settings.stale_after_s}


def limits(settings: Settings) -> dict:
    """The numbers a client needs to plan a clip or a script the way this server will."""
    return {
        "max_seconds": settings.max_seconds,
        "words_per_minute": settings.words_per_minute,
        "default_fps": settings.default_fps,
        "segment_seconds": settings.segment_seconds,
        "max_script_seconds": settings.max_script_seconds,
        "max_segments": settings.max_segments,
        "max_text_chars": MAX_TEXT_CHARS,
        "max_upload_mb": settings.max_upload_mb,
        # The fixed bounds (ltx2.domain.limits), so a client never copies them.
        "min_speed": L.MIN_SPEED,
        "max_speed": L.MAX_SPEED,
        "min_side": L.MIN_SIDE,
        "max_side": L.MAX_SIDE,
        "side_multiple": L.SIDE_MULTIPLE,
        "min_segment_seconds": L.MIN_SEGMENT_SECONDS,
        "max_segment_seconds": L.MAX_SEGMENT_SECONDS,
        "max_crossfade_s": L.MAX_CROSSFADE_S,
        "min_photos": L.MIN_PHOTOS,
        "max_photos": L.MAX_PHOTOS,
        "max_photo_mb": L.MAX_PHOTO_BYTES // 2**20,
    }


class _JobsCollector:
    def __init__(self, store: JobStore):
        self.store = store

    def collect(self):
        counts = self.store.counts()
        by_status = GaugeMetricFamily("avatar_jobs", "Jobs in the store by status", labels=["status"])
        for status in STATUSES:
            by_status.add_metric([status], counts.get(status, 0))
        yield by_status
        yield GaugeMetricFamily(
            "avatar_queue_depth", "Jobs waiting for a worker", value=counts.get(JobStatus.STARTING, 0)
        )
        seconds = CounterMetricFamily("avatar_job_seconds", "Seconds finished jobs spent running", labels=["status"])
        for status, total in self.store.finished_seconds().items():
            seconds.add_metric([status], total)
        yield seconds
        yield CounterMetricFamily(
            "avatar_jobs_finished", "Jobs that reached a final state", value=self.store.finished_count()
        )


def metrics(store: JobStore) -> bytes:
    registry = CollectorRegistry()
    registry.register(_JobsCollector(store))
    return generate_latest(registry)
