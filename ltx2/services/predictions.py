"""Predictions (generate jobs) and what every job shares: check an input, queue it, read, wait, cancel, retry,
delete, derive a retake or a finalize. Status moves go through `ltx2.store.lifecycle`, never here."""

from __future__ import annotations

import asyncio
import re

from starlette.concurrency import run_in_threadpool

from ltx2.domain.errors import Problem
from ltx2.domain.inputs import GenerateInput
from ltx2.domain.policy import is_script, segment_seconds
from ltx2.domain.prompts import estimate_speech_seconds, plan_clip
from ltx2.domain.split import split_script
from ltx2.domain.status import STATUSES, TERMINAL, JobStatus
from ltx2.net import FetchPolicy
from ltx2.services import files, outputs
from ltx2.settings import Settings
from ltx2.store import lifecycle
from ltx2.store.documents import job_document
from ltx2.store.jobs import IdempotencyConflict, JobStore
from ltx2.store.webhooks import validate_events_filter, validate_webhook_url

MAX_WAIT_S = 60.0
WAIT_MARGIN_S = 0.25
MAX_CURSOR = 2**63 - 1  # a job seq; larger values overflow the database's integer
_PREFER_WAIT = re.compile(r"\bwait(?:=(\d+(?:\.\d+)?))?\b")


def document(store: JobStore, settings: Settings, job) -> dict:
    return job_document(job, store.links, store.queue_position(job))


def get_document(store: JobStore, settings: Settings, job_id: str, noun: str = "prediction") -> dict:
    """A job's document from one database session (status reads are most of an API's traffic)."""
    job, position = store.get_with_position(job_id)
    if job is None:
        raise Problem(404, f"no {noun} {job_id}")
    return job_document(job, store.links, position)


def documents(store: JobStore, settings: Settings, jobs) -> list[dict]:
    positions = store.queue_positions(jobs)
    return [job_document(j, store.links, positions.get(j.id)) for j in jobs]


def get_job(store: JobStore, job_id: str, *, kind: str | None = None, noun: str = "prediction"):
    job = store.get(job_id)
    if job is None:
        raise Problem(404, f"no {noun} {job_id}")
    if kind is not None and job.kind != kind:
        raise Problem(404, f"no {noun} {job_id}" + (f" (it is a {job.kind} job)" if noun == "prediction" else ""))
    return job


def check_input(store: JobStore, settings: Settings, inp: GenerateInput) -> None:
    """Everything that can be known before a worker sees the job: files exist, the text fits one clip."""
    if inp.seconds is not None and inp.seconds > settings.max_seconds:
        raise Problem(422, f"input.seconds: at most {settings.max_seconds:g} s (this server's max_seconds)")
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
        raise Problem(
            422,
            "input.seconds sets one clip's length; scripts (captions, crossfade, long texts) are "
            "timed by their text or recording: leave seconds out",
        )
    if inp.audio is not None or inp.seconds is not None:
        return
    try:
        if script:
            split_script(
                inp.text,
                max_clip_seconds=segment_seconds(inp, settings),
                words_per_minute=settings.words_per_minute,
                max_script_seconds=settings.max_script_seconds,
                max_segments=settings.max_segments,
            )
        else:
            plan_clip(
                inp.text, fps=inp.fps, max_seconds=settings.max_seconds, words_per_minute=settings.words_per_minute
            )
    except ValueError as exc:
        raise Problem(422, f"input.text: {exc}") from exc


def check_source(store: JobStore, settings: Settings, inp: GenerateInput) -> None:
    """A retake or finalize needs a finished prediction whose segments still exist."""
    source = inp.source
    parent = store.get(source.prediction)
    if parent is None or parent.kind != "generate":
        raise Problem(422, f"input.source: no prediction {source.prediction}")
    if parent.status != JobStatus.SUCCEEDED:
        raise Problem(409, f"prediction {source.prediction} is {parent.status}; only a succeeded one can be reused")
    segments = (parent.output or {}).get("segments") or []
    if source.action == "retake":
        if not segments:
            raise Problem(422, f"prediction {source.prediction} is one clip, not a script: make it again instead")
        if source.segment is None or source.segment > len(segments):
            raise Problem(404, f"prediction {source.prediction} has segments 1–{len(segments)}, not {source.segment}")
        limit = segment_seconds(inp, settings)
        speech = estimate_speech_seconds(source.text or "", settings.words_per_minute)
        if source.text is not None and inp.audio is None and speech > limit:
            raise Problem(
                422,
                f"text: the new text for segment {source.segment} is about {speech:.1f} s of speech; "
                f"a segment of this script holds at most {limit:g} s. Shorten it, or retake the "
                "neighbouring segment with the rest of the words.",
            )


def create_job(
    store: JobStore,
    settings: Settings,
    kind: str,
    inp: dict,
    *,
    webhook: str | None,
    events: list[str] | None,
    idempotency_key: str | None,
    retried_from: str | None = None,
):
    if webhook is not None:
        try:
            webhook = validate_webhook_url(webhook)
            FetchPolicy.from_settings(settings).check(webhook)  # the delivery's own policy, checked up front
            events = validate_events_filter(events)
        except ValueError as exc:
            raise Problem(422, f"webhook: {exc}") from exc
    elif events is not None:
        raise Problem(422, "webhook_events_filter needs a webhook")
    try:
        return store.create(
            kind,
            inp,
            webhook=webhook,
            webhook_events_filter=events,
            idempotency_key=idempotency_key,
            retried_from=retried_from,
        )
    except IdempotencyConflict as exc:
        raise Problem(
            409, "this Idempotency-Key was already used with a different request", extra={"existing": exc.existing.id}
        ) from exc


def create(
    store: JobStore,
    settings: Settings,
    inp: GenerateInput,
    *,
    webhook: str | None,
    events: list[str] | None,
    idempotency_key: str | None,
):
    """Check and queue a generate job; (job, created) — an idempotent repeat returns the first job.

    `image` and `audio` may be URLs or data: URIs: they become uploads first (dropped again if the request fails)."""
    inp, fresh = resolve_files(store, settings, inp, idempotency_key)
    try:
        check_input(store, settings, inp)
        return create_job(
            store,
            settings,
            "generate",
            # Stored as sent (Replicate's documents echo the input), file inputs as the uploads they became: the
            # worker fills in the defaults when it parses it.
            inp.model_dump(exclude_unset=True),
            webhook=webhook,
            events=events,
            idempotency_key=idempotency_key,
        )
    except BaseException:
        for file_id in fresh:  # a rejected request keeps nothing
            files.drop(store, settings, file_id)
        raise


def resolve_files(store: JobStore, settings: Settings, inp: GenerateInput, idempotency_key: str | None):
    """(input with upload ids, ids of the uploads made here from URLs and data: URIs)."""
    resolved, fresh = {}, []
    try:
        for field in ("image", "audio"):
            file_id, new = files.resolve_input(store, settings, getattr(inp, field), field=f"input.{field}", kind=field)
            if new:
                earlier = files.earlier_copy(store, settings, idempotency_key, field, file_id)
                file_id, new = earlier or file_id, earlier is None
            if file_id is not None:
                resolved[field] = file_id
            if new:
                fresh.append(file_id)
    except BaseException:
        for file_id in fresh:
            files.drop(store, settings, file_id)
        raise
    return inp.model_copy(update=resolved), fresh


async def wait_for(store: JobStore, job_id: str, prefer: str | None):
    """`Prefer: wait=N` blocks up to N seconds (at most 60) for the job to finish."""
    match = _PREFER_WAIT.search(prefer or "")
    job = await run_in_threadpool(store.get, job_id)
    if not match or job is None:
        return job
    # Answered a little before N s: the Python client reads for N + 0.5 s and the document takes a moment.
    wait = min(float(match.group(1) or MAX_WAIT_S), MAX_WAIT_S) - WAIT_MARGIN_S
    deadline = asyncio.get_running_loop().time() + max(wait, 0.0)
    while job is not None and job.status not in TERMINAL and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.2)
        job = await run_in_threadpool(store.get, job_id)
    return job


def blocking_answer(doc: dict, prefer: str | None) -> dict:
    """A blocking create whose job outlasts the wait answers `starting`, as Replicate's sync API does: both
    official clients take any other status of a blocking answer as final (and would return no output), while
    `starting` makes them poll `urls.get`, which shows the job as it really is."""
    if _PREFER_WAIT.search(prefer or "") and doc["status"] not in TERMINAL:
        return {**doc, "status": JobStatus.STARTING.value}
    return doc


async def create_and_wait(store: JobStore, settings: Settings, body, prefer: str | None, idempotency_key: str | None):
    """Create from a request body (`input`, `webhook`, `webhook_events_filter`), honour `Prefer: wait`; returns
    (the document to answer, created)."""
    job, created = await run_in_threadpool(
        create,
        store,
        settings,
        body.input,
        webhook=body.webhook,
        events=body.webhook_events_filter,
        idempotency_key=idempotency_key,
    )
    job = await wait_for(store, job.id, prefer)
    return blocking_answer(await run_in_threadpool(document, store, settings, job), prefer), created


def check_statuses(status: list[str] | None) -> None:
    unknown = [s for s in status or [] if s not in STATUSES]
    if unknown:
        raise Problem(422, f"status: unknown value(s) {unknown}; use {list(STATUSES)}")


def cancel(store: JobStore, job, noun: str = "prediction"):
    """Cancel any job kind the same way: at once when waiting, by flag when running, nothing when finished.

    The `completed` webhook is recorded by the lifecycle's move, never here.
    """
    if job.status in TERMINAL:
        return job
    return lifecycle.cancel(store, job.id) or get_job(store, job.id, noun=noun)


def retry(store: JobStore, settings: Settings, job):
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELED):
        raise Problem(409, f"prediction {job.id} is {job.status}; only failed or canceled ones can be retried")
    check_input(store, settings, GenerateInput.model_validate(job.input))
    new, _ = create_job(
        store,
        settings,
        job.kind,
        job.input,
        webhook=job.webhook,
        events=job.webhook_events_filter,
        idempotency_key=None,
        retried_from=job.id,
    )
    return new


def delete(store: JobStore, settings: Settings, job) -> None:
    """A finished job goes to the trash (restorable for AVATAR_TRASH_DAYS), or for good with 0 days."""
    if job.status not in TERMINAL:
        raise Problem(409, f"prediction {job.id} is {job.status}; cancel it first")
    outputs.discard(store, settings, job)


def _derived(store: JobStore, settings: Settings, parent, inp: dict, idempotency_key: str | None):
    parsed = GenerateInput.model_validate(inp)
    check_input(store, settings, parsed)
    job, _ = create_job(
        store,
        settings,
        "generate",
        parsed.model_dump(),
        webhook=parent.webhook,
        events=parent.webhook_events_filter,
        idempotency_key=idempotency_key,
    )
    return job


def retake(store: JobStore, settings: Settings, parent, number: int, text: str | None, idempotency_key: str | None):
    """A new job that makes segment `number` again (optionally with new text) and reuses the others."""
    if number < 1:
        raise Problem(404, f"segments are numbered from 1, not {number}")
    inp = dict(parent.input)
    inp["source"] = {"prediction": parent.id, "action": "retake", "segment": number, "text": text}
    segments = (parent.output or {}).get("segments") or []
    if text is not None and number <= len(segments):
        # The job's text is the script as it now reads, so a re-run or the gallery shows the new words.
        inp["text"] = " ".join(text if s["number"] == number else s["text"] for s in segments)
    return _derived(store, settings, parent, inp, idempotency_key)


def finalize(
    store: JobStore,
    settings: Settings,
    parent,
    *,
    mode: str,
    width: int | None,
    height: int | None,
    idempotency_key: str | None,
):
    """The same job again at full quality (same seed and segments)."""
    inp = GenerateInput.model_validate(parent.input).model_dump()
    inp.update(draft=False, mode=mode, width=width or inp["width"], height=height or inp["height"])
    if (parent.output or {}).get("segments"):
        inp["source"] = {"prediction": parent.id, "action": "finalize"}
    else:
        if parent.status != JobStatus.SUCCEEDED:
            raise Problem(409, f"prediction {parent.id} is {parent.status}; only a succeeded one can be finalized")
        inp["source"] = None
    return _derived(store, settings, parent, inp, idempotency_key)
