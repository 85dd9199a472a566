"""Server-sent events for one prediction.

Replicate's format (the default, what both official clients read): `logs` (one log line per event; progress as
the tqdm-style lines Replicate models print, `  45%|████▌     | 5/11 [phase]`, which the clients' progress
parsers understand), `output` (the video's URL), `error` (`{"detail": …}`) and `done` (`{}`, or
`{"reason": "canceled"}` / `{"reason": "error"}`). Every event has an id (the Python client drops events
without one). `format=documents`: the richer stream of the whole job document on every change (`progress`
events, then one `completed`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.concurrency import run_in_threadpool

from ltx2.domain.progress_lines import progress_line
from ltx2.domain.status import TERMINAL, JobStatus
from ltx2.store.documents import output_document
from ltx2.store.jobs import JobStore

POLL_S = 0.25


def new_log_lines(before: str, now: str) -> list[str]:
    """Lines of `now` not yet sent; the store keeps only the newest 64 KB, so the head may have been cut."""
    if now.startswith(before):
        fresh = now[len(before) :]
    else:
        last = before.rstrip("\n").rsplit("\n", 1)[-1]
        at = now.rfind(last + "\n") if last else -1
        fresh = now[at + len(last) + 1 :] if at >= 0 else now
    return [line for line in fresh.split("\n") if line]


def _event(name: str, data: str, number: int) -> str:
    lines = "".join(f"data: {part}\n" for part in data.split("\n"))
    return f"event: {name}\nid: {number}\n{lines}\n"


async def replicate_events(
    store: JobStore, job_id: str, disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    number, logs, shown = 0, "", None

    def emit(name: str, data: str) -> str:
        nonlocal number
        number += 1
        return _event(name, data, number)

    while True:
        job = await run_in_threadpool(store.get, job_id)
        if job is None:
            yield emit("error", json.dumps({"detail": f"prediction {job_id} was deleted"}))
            return
        for line in new_log_lines(logs, job.logs or ""):
            yield emit("logs", line)
        logs = job.logs or ""
        progress = (job.progress_phase, job.progress_step)
        if job.progress_total and progress != shown:
            shown = progress
            yield emit(
                "logs",
                progress_line(
                    float(job.progress_percent or 0), job.progress_step, job.progress_total, job.progress_phase
                ),
            )
        if job.status in TERMINAL:
            if job.status == JobStatus.SUCCEEDED:
                output = output_document(job, store.links) or {}
                yield emit("output", output.get("video_url") or json.dumps(output))
                yield emit("done", "{}")
            elif job.status == JobStatus.CANCELED:
                yield emit("done", json.dumps({"reason": "canceled"}))
            else:
                yield emit("error", json.dumps({"detail": job.error or "the prediction failed"}))
                yield emit("done", json.dumps({"reason": "error"}))
            return
        if await disconnected():
            return
        await asyncio.sleep(POLL_S)


async def document_events(
    store: JobStore, job_id: str, document: Callable, disconnected: Callable[[], Awaitable[bool]]
) -> AsyncIterator[str]:
    last = None
    while True:
        current = await run_in_threadpool(store.get, job_id)
        if current is None:
            yield 'event: error\ndata: {"detail": "deleted"}\n\n'
            return
        key = (current.status_sequence, current.progress_step, current.progress_phase)
        if key != last:
            last = key
            doc = await run_in_threadpool(document, current)
            yield f"event: {'progress' if current.status not in TERMINAL else 'completed'}\n"
            yield f"id: {current.status_sequence}.{current.progress_step}\ndata: {json.dumps(doc)}\n\n"
        if current.status in TERMINAL or await disconnected():
            return
        await asyncio.sleep(POLL_S)
