"""Replicate's model endpoints for the one model this server serves (AVATAR_MODEL_NAME): the model, its
version(s), predictions by model name (and the deployments alias), the webhook signing secret. Thin: the use
cases are in ltx2.services.models and ltx2.services.predictions."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ltx2.api.deps import IdempotencyHeader, PreferHeader, SettingsDep, StoreDep
from ltx2.api.schemas import (
    CREATED_RESPONSES,
    JobDocument,
    ModelDocument,
    ModelPredictionRequest,
    ModelVersion,
    ModelVersionPage,
    WebhookSecret,
)
from ltx2.services import models as svc
from ltx2.services.predictions import create_and_wait
from ltx2.store.notifier import webhook_secret

router = APIRouter(tags=["models"])


@router.get("/v1/models/{owner}/{name}", response_model=ModelDocument, summary="The model this server serves")
def get_model(owner: str, name: str, store: StoreDep, settings: SettingsDep):
    svc.check_model(store, owner, name)
    return svc.model_document(store, settings)


@router.get("/v1/models/{owner}/{name}/versions", response_model=ModelVersionPage, summary="The model's version")
def list_versions(owner: str, name: str, store: StoreDep):
    svc.check_model(store, owner, name)
    return {"results": [svc.version_document(store)], "next": None, "previous": None}


@router.get(
    "/v1/models/{owner}/{name}/versions/{version_id}",
    response_model=ModelVersion,
    summary="A version: its id digests the code and weights in use; openapi_schema describes input and output",
)
def get_version(owner: str, name: str, version_id: str, store: StoreDep):
    svc.check_model(store, owner, name)
    svc.check_version(store, version_id)
    return svc.version_document(store)


async def _create(owner, name, body, store, settings, prefer, idempotency_key) -> JSONResponse:
    svc.check_model(store, owner, name)
    doc, created = await create_and_wait(store, settings, body, prefer, idempotency_key)
    return JSONResponse(doc, status_code=201 if created else 200, headers={"Location": doc["urls"]["get"]})


@router.post(
    "/v1/models/{owner}/{name}/predictions",
    status_code=201,
    response_model=JobDocument,
    responses=CREATED_RESPONSES,
    summary="Create a prediction of the model (its current version)",
)
async def create_model_prediction(
    owner: str,
    name: str,
    body: ModelPredictionRequest,
    store: StoreDep,
    settings: SettingsDep,
    prefer: PreferHeader = None,
    idempotency_key: IdempotencyHeader = None,
):
    return await _create(owner, name, body, store, settings, prefer, idempotency_key)


@router.post(
    "/v1/deployments/{owner}/{name}/predictions",
    status_code=201,
    response_model=JobDocument,
    responses=CREATED_RESPONSES,
    summary="Create a prediction through a deployment: the model itself (this server is its one deployment)",
)
async def create_deployment_prediction(
    owner: str,
    name: str,
    body: ModelPredictionRequest,
    store: StoreDep,
    settings: SettingsDep,
    prefer: PreferHeader = None,
    idempotency_key: IdempotencyHeader = None,
):
    return await _create(owner, name, body, store, settings, prefer, idempotency_key)


@router.get(
    "/v1/webhooks/default/secret",
    response_model=WebhookSecret,
    tags=["webhooks"],
    summary="The secret that signs every webhook (Standard Webhooks), for the clients' validators",
)
def get_webhook_secret(settings: SettingsDep):
    return {"key": webhook_secret(settings)}
