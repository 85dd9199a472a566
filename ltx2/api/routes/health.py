"""Health (open), Cog-style health-check, the workers list, the planning limits and Prometheus metrics."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from ltx2.api.deps import SettingsDep, StoreDep, has_key
from ltx2.api.schemas import Health, HealthCheck, Limits, WorkerList
from ltx2.services import health as svc

open_router = APIRouter(tags=["operations"])
router = APIRouter(tags=["operations"])


@router.get(
    "/v1/workers", response_model=WorkerList, summary="Every worker process that reported itself, on any machine"
)
def list_workers(
    store: StoreDep,
    settings: SettingsDep,
    all_: Annotated[bool, Query(alias="all", description="Also workers gone for more than an hour")] = False,
):
    """Workers alive now (heartbeat within AVATAR_STALE_AFTER_S) and, unless `all=true`, those that stopped or
    were lost within the last hour — newest first. A worker killed without warning stays in its last state
    (e.g. `busy`) with `alive: false`."""
    return svc.workers(store, settings, all_)


@router.get(
    "/v1/limits",
    response_model=Limits,
    summary="What this server accepts: clip and script lengths, speech rate, uploads",
)
def limits(settings: SettingsDep):
    """The numbers a client needs to plan a clip or a script the way this server will (the studio's Create page
    shows its segment plan with them)."""
    return svc.limits(settings)


@open_router.get("/health", response_model=Health, summary="Seed API: is the server up")
def health(store: StoreDep, settings: SettingsDep):
    return svc.health(store, settings)


@open_router.get(
    "/health-check",
    response_model=HealthCheck,
    response_model_exclude_unset=True,
    summary="Cog-style state: STARTING, READY, BUSY, SETUP_FAILED, DEFUNCT",
)
def health_check(request: Request, store: StoreDep, settings: SettingsDep):
    return svc.health_check(store, settings, detail=has_key(request))


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics",
)
def metrics(store: StoreDep):
    return Response(svc.metrics(store), media_type=CONTENT_TYPE_LATEST)
