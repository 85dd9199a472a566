"""/v1/predictions: create, list, get, cancel, retry, stream (SSE), delete, retake, finalize. Thin: the use
cases are in ltx2.services.predictions."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from ltx2.api.deps import IdempotencyHeader, PreferHeader, SettingsDep, StoreDep
from ltx2.api.schemas import CREATED_RESPONSES, JobDocument, JobPage, ModelPredictionRequest
from ltx2.domain import limits as L
from ltx2.domain.errors import Problem
from ltx2.domain.status import STATUSES
from ltx2.services import models, streams
from ltx2.services import predictions as svc
from ltx2.services.predictions import MAX_CURSOR, document

router = APIRouter(prefix="/v1/predictions", tags=["predictions"])


class PredictionRequest(ModelPredictionRequest):
    version: str | None = Field(
        default=None, description="The model version: its id or owner/name:id (GET /v1/models/{owner}/{name})."
    )


class RetakeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="New text for this segment; default: the same words, a new take.",
    )


class FinalizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["distilled", "two-stage"] = Field(
        default="two-stage", description="two-stage: the quality pipeline (guided stage 1)."
    )
    width: int | None = Field(
        default=None, ge=L.MIN_SIDE, le=L.MAX_SIDE, multiple_of=L.SIDE_MULTIPLE, description="Default: the job's."
    )
    height: int | None = Field(default=None, ge=L.MIN_SIDE, le=L.MAX_SIDE, multiple_of=L.SIDE_MULTIPLE)


@router.post(
    "",
    status_code=201,
    response_model=JobDocument,
    responses=CREATED_RESPONSES,
    summary="Create a prediction (a talking-avatar clip)",
)
async def create_prediction(
    body: PredictionRequest,
    store: StoreDep,
    settings: SettingsDep,
    prefer: PreferHeader = None,
    idempotency_key: IdempotencyHeader = None,
):
    if body.version is not None:
        models.check_version_ref(store, body.version)
    doc, created = await svc.create_and_wait(store, settings, body, prefer, idempotency_key)
    return JSONResponse(doc, status_code=201 if created else 200, headers={"Location": doc["urls"]["get"]})


@router.get("", response_model=JobPage, summary="List predictions, newest first")
def list_predictions(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    status: Annotated[list[str] | None, Query(description=f"Filter: any of {list(STATUSES)}")] = None,
    cursor: Annotated[int | None, Query(ge=0, le=MAX_CURSOR)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
):
    svc.check_statuses(status)
    jobs, next_cursor = store.list(status=status, kind="generate", cursor=cursor, limit=limit, read_only=True)
    nxt = None
    if next_cursor is not None:
        nxt = str(request.url.include_query_params(cursor=next_cursor))
    # Documents are built to the response model already (extra keys allowed): validating them again cost more
    # CPU than the database read, so the polled routes answer them as they are.
    return JSONResponse({"results": svc.documents(store, settings, jobs), "next": nxt})


@router.get("/{job_id}", response_model=JobDocument, summary="Get a prediction")
async def get_prediction(job_id: str, store: StoreDep, settings: SettingsDep, prefer: PreferHeader = None):
    if prefer:
        await svc.wait_for(store, job_id, prefer)
    return JSONResponse(await run_in_threadpool(svc.get_document, store, settings, job_id))


@router.post(
    "/{job_id}/cancel", response_model=JobDocument, summary="Cancel: at once if waiting, within one step if running"
)
def cancel_prediction(job_id: str, store: StoreDep, settings: SettingsDep):
    job = svc.cancel(store, svc.get_job(store, job_id))
    return document(store, settings, job)


@router.post(
    "/{job_id}/retry", status_code=201, response_model=JobDocument, summary="Run a failed or canceled prediction again"
)
def retry_prediction(job_id: str, store: StoreDep, settings: SettingsDep):
    # A training's input is not a GenerateInput; it is retried by training again.
    new = svc.retry(store, settings, svc.get_job(store, job_id, kind="generate"))
    return JSONResponse(document(store, settings, new), status_code=201)


@router.delete(
    "/{job_id}", status_code=204, response_class=Response, summary="Delete a finished prediction and its files"
)
def delete_prediction(job_id: str, store: StoreDep, settings: SettingsDep):
    svc.delete(store, settings, svc.get_job(store, job_id))
    return Response(status_code=204)


def _created(settings, store, job) -> JSONResponse:
    return JSONResponse(
        document(store, settings, job),
        status_code=201,
        headers={"Location": f"{settings.base_url}/v1/predictions/{job.id}"},
    )


@router.post(
    "/{job_id}/segments/{number}/retake",
    status_code=201,
    response_model=JobDocument,
    summary="Make one segment of a script again (optionally with new text); the others are reused",
)
def retake_segment(
    job_id: str,
    number: int,
    store: StoreDep,
    settings: SettingsDep,
    body: RetakeRequest | None = None,
    idempotency_key: IdempotencyHeader = None,
):
    parent = svc.get_job(store, job_id, kind="generate")
    job = svc.retake(store, settings, parent, number, body.text if body else None, idempotency_key)
    return _created(settings, store, job)


@router.post(
    "/{job_id}/finalize",
    status_code=201,
    response_model=JobDocument,
    summary="Render a draft (or any finished prediction) again at full quality, same seed and segments",
)
def finalize_prediction(
    job_id: str,
    store: StoreDep,
    settings: SettingsDep,
    body: FinalizeRequest | None = None,
    idempotency_key: IdempotencyHeader = None,
):
    parent = svc.get_job(store, job_id, kind="generate")
    body = body or FinalizeRequest()
    job = svc.finalize(
        store, settings, parent, mode=body.mode, width=body.width, height=body.height, idempotency_key=idempotency_key
    )
    return _created(settings, store, job)


@router.get(
    "/{job_id}/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "Replicate's events: `logs` (log and progress lines), `output` (the video URL), `error`, "
            "`done`. With format=documents: `progress` events (the job document), then one `completed`.",
        }
    },
    summary="Server-sent events until the prediction is done (the signed urls.stream opens without the key)",
)
async def stream_prediction(
    job_id: str,
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    events_format: Annotated[
        Literal["replicate", "documents"], Query(alias="format", description="documents: the whole job document")
    ] = "replicate",
):
    if await run_in_threadpool(store.get, job_id) is None:
        raise Problem(404, f"no prediction {job_id}")
    if events_format == "documents":
        events = streams.document_events(
            store, job_id, lambda job: document(store, settings, job), request.is_disconnected
        )
    else:
        events = streams.replicate_events(store, job_id, request.is_disconnected)
    return StreamingResponse(
        events, media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
