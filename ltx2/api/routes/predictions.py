"""/v1/predictions: create, list, get, cancel, retry, stream (SSE), delete."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from ltx2.api import deps
from ltx2.api.errors import Problem
from ltx2.engine.prompts import estimate_speech_seconds, plan_clip
from ltx2.jobs import notify
from ltx2.jobs.documents import job_document
from ltx2.jobs.inputs import GenerateInput
from ltx2.jobs.models import CANCELED, FAILED, STATUSES, SUCCEEDED, TERMINAL
from ltx2.jobs.store import IdempotencyConflict, JobStore
from ltx2.jobs.webhooks import EVENTS, validate_events_filter, validate_webhook_url
from ltx2.net import FetchPolicy
from ltx2.script.policy import is_script, segment_seconds
from ltx2.script.split import split_script
from ltx2.settings import Settings

router = APIRouter(prefix="/v1/predictions", tags=["predictions"])
MAX_WAIT_S = 60.0
MAX_CURSOR = 2**63 - 1  # a job seq; larger values overflow the database's integer
_PREFER_WAIT = re.compile(r"\bwait(?:=(\d+(?:\.\d+)?))?\b")


class PredictionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: GenerateInput
    webhook: str | None = Field(default=None, description="URL that receives the job document on events.")
    webhook_events_filter: list[str] | None = Field(default=None, description=f"Subset of {list(EVENTS)}.")


def document(store: JobStore, settings: Settings, job) -> dict:
    return job_document(job, settings.base_url, store.queue_position(job))


def get_job(store: JobStore, job_id: str):
    job = store.get(job_id)
    if job is None:
        raise Problem(404, f"no prediction {job_id}")
    return job


def check_input(store: JobStore, settings: Settings, inp: GenerateInput) -> None:
    """Everything that can be known before a worker sees the job: files exist, the text fits one clip."""
    for field, kind in (("image", "image"), ("audio", "audio")):
        file_id = getattr(inp, field)
        if file_id is None:
            continue
        record = store.get_file(file_id)
        if record is None:
            raise Problem(422, f"input.{field}: no uploaded file {file_id} (upload it with POST /v1/files)")
        if record.kind != kind:
            raise Problem(422, f"input.{field}: file {file_id} is {record.kind}, not {kind}")
    if inp.profile is not None and store.get_profile(inp.profile) is None:
        raise Problem(422, f"input.profile: no face profile {inp.profile!r} (see GET /v1/profiles)")
    if inp.source is not None:
        check_source(store, settings, inp)
    audio = store.get_file(inp.audio) if inp.audio is not None else None
    script = is_script(inp, settings, (audio.meta or {}).get("duration") if audio is not None else None)
    if script and inp.seconds is not None:
        raise Problem(422, "input.seconds sets one clip's length; scripts (captions, crossfade, long texts) are "
                      "timed by their text or recording: leave seconds out")
    if inp.audio is not None or inp.seconds is not None:
        return
    try:
        if script:
            split_script(inp.text, max_clip_seconds=segment_seconds(inp, settings),
                         words_per_minute=settings.words_per_minute,
                         max_script_seconds=settings.max_script_seconds, max_segments=settings.max_segments)
        else:
            plan_clip(inp.text, fps=inp.fps, max_seconds=settings.max_seconds,
                      words_per_minute=settings.words_per_minute)
    except ValueError as exc:
        raise Problem(422, f"input.text: {exc}") from exc


def check_source(store: JobStore, settings: Settings, inp: GenerateInput) -> None:
    """A retake or finalize needs a finished prediction whose segments still exist."""
    source = inp.source
    parent = store.get(source.prediction)
    if parent is None or parent.kind != "generate":
        raise Problem(422, f"input.source: no prediction {source.prediction}")
    if parent.status != SUCCEEDED:
        raise Problem(409, f"prediction {source.prediction} is {parent.status}; only a succeeded one can be reused")
    segments = (parent.output or {}).get("segments") or []
    if source.action == "retake":
        if not segments:
            raise Problem(422, f"prediction {source.prediction} is one clip, not a script: make it again instead")
        if source.segment is None or source.segment > len(segments):
            raise Problem(404, f"prediction {source.prediction} has segments 1–{len(segments)}, "
                          f"not {source.segment}")
        limit = segment_seconds(inp, settings)
        speech = estimate_speech_seconds(source.text or "", settings.words_per_minute)
        if source.text is not None and inp.audio is None and speech > limit:
            raise Problem(422, f"text: the new text for segment {source.segment} is about {speech:.1f} s of speech; "
                          f"a segment of this script holds at most {limit:g} s. Shorten it, or retake the "
                          "neighbouring segment with the rest of the words.")


def create_job(store: JobStore, settings: Settings, kind: str, inp: dict, *, webhook: str | None,
               events: list[str] | None, idempotency_key: str | None, retried_from: str | None = None):
    if webhook is not None:
        try:
            webhook = validate_webhook_url(webhook)
            FetchPolicy.from_settings(settings).check(webhook)
            events = validate_events_filter(events)
        except ValueError as exc:
            raise Problem(422, f"webhook: {exc}") from exc
    elif events is not None:
        raise Problem(422, "webhook_events_filter needs a webhook")
    try:
        return store.create(kind, inp, webhook=webhook, webhook_events_filter=events,
                            idempotency_key=idempotency_key, retried_from=retried_from)
    except IdempotencyConflict as exc:
        raise Problem(409, "this Idempotency-Key was already used with a different request",
                      extra={"existing": exc.existing.id}) from exc


async def wait_for(store: JobStore, job_id: str, prefer: str | None):
    """`Prefer: wait=N` blocks up to N seconds (at most 60) for the job to finish."""
    match = _PREFER_WAIT.search(prefer or "")
    job = await run_in_threadpool(store.get, job_id)
    if not match or job is None:
        return job
    deadline = asyncio.get_running_loop().time() + min(float(match.group(1) or MAX_WAIT_S), MAX_WAIT_S)
    while job is not None and job.status not in TERMINAL and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        job = await run_in_threadpool(store.get, job_id)
    return job


@router.post("", status_code=201, summary="Create a prediction (a talking-avatar clip)")
async def create_prediction(
    body: PredictionRequest,
    request: Request,
    prefer: str | None = Header(default=None, description="wait=N: block up to N s (≤60) for the result"),
    idempotency_key: str | None = Header(default=None, max_length=255),
):
    store, settings = deps.store(request), deps.settings(request)
    await run_in_threadpool(check_input, store, settings, body.input)
    job, created = await run_in_threadpool(
        create_job, store, settings, "generate", body.input.model_dump(), webhook=body.webhook,
        events=body.webhook_events_filter, idempotency_key=idempotency_key,
    )
    job = await wait_for(store, job.id, prefer)
    doc = await run_in_threadpool(document, store, settings, job)
    return JSONResponse(doc, status_code=201 if created else 200, headers={"Location": doc["urls"]["get"]})


@router.get("", summary="List predictions, newest first")
def list_predictions(
    request: Request,
    status: list[str] | None = Query(default=None, description=f"Filter: any of {list(STATUSES)}"),
    cursor: int | None = Query(default=None, ge=0, le=MAX_CURSOR),
    limit: int = Query(default=50, ge=1, le=200),
):
    store, settings = deps.store(request), deps.settings(request)
    unknown = [s for s in status or [] if s not in STATUSES]
    if unknown:
        raise Problem(422, f"status: unknown value(s) {unknown}; use {list(STATUSES)}")
    jobs, next_cursor = store.list(status=status, kind="generate", cursor=cursor, limit=limit)
    nxt = None
    if next_cursor is not None:
        nxt = str(request.url.include_query_params(cursor=next_cursor))
    return {"results": [document(store, settings, j) for j in jobs], "next": nxt}


@router.get("/{job_id}", summary="Get a prediction")
async def get_prediction(job_id: str, request: Request, prefer: str | None = Header(default=None)):
    store, settings = deps.store(request), deps.settings(request)
    job = await wait_for(store, job_id, prefer)
    if job is None:
        raise Problem(404, f"no prediction {job_id}")
    return await run_in_threadpool(document, store, settings, job)


@router.post("/{job_id}/cancel", summary="Cancel: at once if waiting, within one step if running")
def cancel_prediction(job_id: str, request: Request):
    store, settings = deps.store(request), deps.settings(request)
    job = get_job(store, job_id)
    if job.status not in TERMINAL:
        job = store.request_cancel(job_id)
        if job.status == CANCELED:
            notify.send(store, settings, job_id, "completed")
    return document(store, settings, job)


@router.post("/{job_id}/retry", status_code=201, summary="Run a failed or canceled prediction again")
def retry_prediction(job_id: str, request: Request):
    store, settings = deps.store(request), deps.settings(request)
    job = get_job(store, job_id)
    if job.kind != "generate":  # a training's input is not a GenerateInput; it is retried by training again
        raise Problem(404, f"no prediction {job_id} (it is a {job.kind} job)")
    if job.status not in (FAILED, CANCELED):
        raise Problem(409, f"prediction {job_id} is {job.status}; only failed or canceled ones can be retried")
    check_input(store, settings, GenerateInput.model_validate(job.input))
    new, _ = create_job(store, settings, job.kind, job.input, webhook=job.webhook,
                        events=job.webhook_events_filter, idempotency_key=None, retried_from=job.id)
    return JSONResponse(document(store, settings, new), status_code=201)


@router.delete("/{job_id}", status_code=204, summary="Delete a finished prediction and its files")
def delete_prediction(job_id: str, request: Request):
    store, settings = deps.store(request), deps.settings(request)
    job = get_job(store, job_id)
    if job.status not in TERMINAL:
        raise Problem(409, f"prediction {job_id} is {job.status}; cancel it first")
    if store.delete(job_id):
        remove_outputs(settings, job)
    return Response(status_code=204)


def output_files(job) -> list[str]:
    out = job.output or {}
    names = [out[k] for k in ("video", "thumbnail", "metadata_file") if out.get(k)]
    return names + list((out.get("captions") or {}).values())


def remove_outputs(settings: Settings, job) -> int:
    """Delete a job's files: its outputs and, for a script, its kept segments. Returns the files removed."""
    import shutil

    removed = 0
    for name in output_files(job):
        path = settings.outputs_dir / name
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    folder = settings.state_dir / "segments" / job.id
    if folder.is_dir():
        removed += sum(1 for p in folder.iterdir() if p.is_file())
        shutil.rmtree(folder, ignore_errors=True)
    return removed


class RetakeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=1000,
                             description="New text for this segment; default: the same words, a new take.")


class FinalizeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["distilled", "two-stage"] = Field(default="two-stage", description="two-stage: the quality "
                                                    "pipeline (guided stage 1).")
    width: int | None = Field(default=None, ge=64, le=2048, multiple_of=64, description="Default: the job's.")
    height: int | None = Field(default=None, ge=64, le=2048, multiple_of=64)


def _derived(store: JobStore, settings: Settings, parent, inp: dict, request: Request) -> JSONResponse:
    parsed = GenerateInput.model_validate(inp)
    check_input(store, settings, parsed)
    job, _ = create_job(store, settings, "generate", parsed.model_dump(), webhook=parent.webhook,
                        events=parent.webhook_events_filter, idempotency_key=request.headers.get("idempotency-key"))
    return JSONResponse(document(store, settings, job), status_code=201, headers={"Location": f"{settings.base_url}"
                        f"/v1/predictions/{job.id}"})


@router.post("/{job_id}/segments/{number}/retake", status_code=201,
             summary="Make one segment of a script again (optionally with new text); the others are reused")
def retake_segment(job_id: str, number: int, request: Request, body: RetakeRequest | None = None):
    store, settings = deps.store(request), deps.settings(request)
    parent = get_job(store, job_id)
    if parent.kind != "generate":
        raise Problem(404, f"no prediction {job_id} (it is a {parent.kind} job)")
    inp = dict(parent.input)
    if number < 1:
        raise Problem(404, f"segments are numbered from 1, not {number}")
    text = body.text if body else None
    inp["source"] = {"prediction": parent.id, "action": "retake", "segment": number, "text": text}
    segments = (parent.output or {}).get("segments") or []
    if text is not None and number <= len(segments):
        # The job's text is the script as it now reads, so a re-run or the gallery shows the new words.
        inp["text"] = " ".join(text if s["number"] == number else s["text"] for s in segments)
    return _derived(store, settings, parent, inp, request)


@router.post("/{job_id}/finalize", status_code=201,
             summary="Render a draft (or any finished prediction) again at full quality, same seed and segments")
def finalize_prediction(job_id: str, request: Request, body: FinalizeRequest | None = None):
    store, settings = deps.store(request), deps.settings(request)
    parent = get_job(store, job_id)
    if parent.kind != "generate":
        raise Problem(404, f"no prediction {job_id} (it is a {parent.kind} job)")
    body = body or FinalizeRequest()
    inp = dict(parent.input)
    inp.update(draft=False, mode=body.mode, width=body.width or inp["width"], height=body.height or inp["height"])
    if (parent.output or {}).get("segments"):
        inp["source"] = {"prediction": parent.id, "action": "finalize"}
    else:
        if parent.status != SUCCEEDED:
            raise Problem(409, f"prediction {job_id} is {parent.status}; only a succeeded one can be finalized")
        inp["source"] = None
    return _derived(store, settings, parent, inp, request)


@router.get("/{job_id}/stream", summary="Server-sent events: the job document on every change, until done")
async def stream_prediction(job_id: str, request: Request):
    store, settings = deps.store(request), deps.settings(request)
    job = await run_in_threadpool(store.get, job_id)
    if job is None:
        raise Problem(404, f"no prediction {job_id}")

    async def events():
        last = None
        while True:
            current = await run_in_threadpool(store.get, job_id)
            if current is None:
                yield "event: error\ndata: {\"detail\": \"deleted\"}\n\n"
                return
            key = (current.status_sequence, current.progress_step, current.progress_phase)
            if key != last:
                last = key
                doc = await run_in_threadpool(document, store, settings, current)
                yield f"event: {'progress' if current.status not in TERMINAL else 'completed'}\n"
                yield f"id: {current.status_sequence}.{current.progress_step}\ndata: {json.dumps(doc)}\n\n"
            if current.status in TERMINAL or await request.is_disconnected():
                return
            await asyncio.sleep(0.25)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
