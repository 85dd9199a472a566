"""The FastAPI application: thin, torch-free, talking to the job store only."""

from __future__ import annotations

import gc
import threading
import time
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from loguru import logger

from ltx2 import __version__
from ltx2.api import deps, docs, errors
from ltx2.api.routes import files, health, legacy, models, predictions, trainings, trash
from ltx2.api.security import BrowserGuard
from ltx2.services import files as file_service
from ltx2.services import outputs
from ltx2.settings import Settings, get_settings
from ltx2.state import configure_logging, secure_state
from ltx2.store import lifecycle
from ltx2.store.jobs import JobStore
from ltx2.store.links import links_for
from ltx2.store.notifier import Notifier

SWEEP_EVERY_S = 60.0  # expired trash entries and (with AVATAR_RETENTION_DAYS) expired inputs go this often


def reap_forever(store: JobStore, settings: Settings, stop: threading.Event) -> None:
    """Fail or requeue jobs whose worker stopped heartbeating; safe to run on several machines at once. Every
    SWEEP_EVERY_S it also empties expired trash entries and removes finished jobs' inputs past
    AVATAR_RETENTION_DAYS (when set)."""
    interval = max(0.5, min(5.0, settings.stale_after_s / 4))
    next_sweep = 0.0
    while not stop.wait(interval):
        try:
            for job_id, status in lifecycle.reap(store, settings.stale_after_s):
                logger.warning("reaper: job {} → {}", job_id, status)
        except Exception:  # noqa: BLE001 - a database hiccup must not end the reaper
            logger.exception("reaper pass failed")
        if time.monotonic() >= next_sweep:
            next_sweep = time.monotonic() + SWEEP_EVERY_S
            try:
                if emptied := outputs.sweep(settings):
                    logger.info("trash: {} expired entries deleted", emptied)
                if removed := file_service.sweep_expired(store, settings):
                    logger.info("retention: {} upload(s) of finished jobs removed", removed)
            except Exception:  # noqa: BLE001 - a full disk or a racing sweeper must not end the reaper
                logger.exception("sweep failed")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(log_polls=settings.log_polls)
    store = JobStore(settings.db_url, links=links_for(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for folder in (settings.outputs_dir, settings.temp_dir, settings.uploads_dir):
            folder.mkdir(parents=True, exist_ok=True)
        secure_state(settings)
        store.migrate()
        secure_state(settings)  # the database file now exists: 0600
        stop = threading.Event()
        reaper = threading.Thread(target=reap_forever, args=(store, settings, stop), name="reaper", daemon=True)
        reaper.start()
        notifier = Notifier(store, settings).start()
        # Everything built so far (FastAPI, pydantic, SQLAlchemy: hundreds of thousands of objects) lives as long
        # as the process: out of the collector's reach, a full collection scans only what requests create.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            stop.set()
            reaper.join(timeout=10)
            notifier.stop(timeout=10)
            store.engine.dispose()

    app = FastAPI(
        title="Avatar Generator",
        version=__version__,
        description="Talking-avatar videos on LTX-2. /v1 is Replicate-shaped; the seed's paths are kept as "
        "adapters. Errors are RFC 9457 problem+json.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by ltx2.api.docs, behind the key
    )
    # Uploads are capped again per kind in ltx2.api.uploads; this stops an oversized body at the door.
    app.add_middleware(errors.BodyLimit, max_bytes=(settings.max_upload_mb + 1) * 2**20)
    # Outermost: a foreign Host or a cross-site POST is answered before anything else runs (README "Security").
    app.add_middleware(BrowserGuard, settings=settings)
    app.state.store = store
    app.state.settings = settings
    errors.install(app)
    protected = [Depends(deps.require_key)]
    # Routes are matched in this order, router by router (no two share a path): what pollers read comes first
    # (matching /status/{id} behind five routers took 0.14 ms of a 1.3 ms read, now 0.07 ms).
    app.include_router(health.open_router)
    app.include_router(predictions.router, dependencies=protected)
    app.include_router(legacy.router, dependencies=protected)
    app.include_router(health.router, dependencies=protected)
    app.include_router(models.router, dependencies=protected)
    app.include_router(files.router, dependencies=protected)
    app.include_router(files.downloads, dependencies=protected)
    app.include_router(trainings.router, dependencies=protected)
    app.include_router(trainings.seed_router, dependencies=protected)
    app.include_router(trash.router, dependencies=protected)
    docs.install(app, protected, open_routers=[health.open_router])
    return app
