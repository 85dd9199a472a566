"""Jobs: the queue with positions, live progress of the running job, cancel and retry, errors in words; a
finished script's segments with retakes, its captions, and Finalize for drafts."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from frontend import ui
from frontend.client import ApiError

RECENT = 30
CAPTION_NAMES = {"srt": "SRT", "vtt": "WebVTT"}
FINISHED_REFRESH_S = 30  # the finished list's "created … ago" stays true while the page is open
FINALIZE_MODES = {"two-stage": "Final: two-stage guided", "distilled": "Fast: distilled"}
INLINE_ERRORS: dict[str, tuple[ApiError, str]] = {}  # this run's errors shown where the button was, not on top


def segments_of(job: dict) -> list[dict]:
    return (job.get("output") or {}).get("segments") or []


def describe(job: dict) -> str:
    inp = ui.job_input(job)
    who = (
        "voice recording"
        if inp.get("audio")
        else f"profile {inp['profile']}"
        if inp.get("profile")
        else "reference photo"
        if inp.get("image")
        else "random avatar"
    )
    mode = "final" if inp.get("mode") == "two-stage" else "fast"
    if inp.get("draft"):
        mode = "draft (half size, fast)"
    size = f"{inp.get('width')}×{inp.get('height')}"
    extras = []
    if segments := segments_of(job):
        extras.append(f"{len(segments)} segments")
    if inp.get("captions"):
        extras.append("captions " + " + ".join(CAPTION_NAMES.get(f, f) for f in inp["captions"]))
    if inp.get("burn_captions"):
        extras.append("captions burned in")
    if inp.get("crossfade"):
        extras.append(f"{inp['crossfade']:g} s crossfade")
    return " · ".join(
        [
            who,
            size,
            f"seed {inp.get('seed')}",
            f"{inp.get('speed', 1):g}×",
            mode,
            *extras,
            f"created {ui.when(job.get('created_at'))}",
            f"`{job['id']}`",
        ]
    )


def source_line(job: dict) -> str | None:
    """Where a retake or a finalized render comes from."""
    src = (job.get("input") or {}).get("source") or {}
    parent = f"`{src.get('prediction')}`"
    if src.get("action") == "retake":
        words = (
            f" with new text “{ui.md_escape(ui.short(src['text'], 120))}”"
            if src.get("text")
            else ": same words, a new take"
        )
        return f":material/restart_alt: Retake of segment {src.get('segment')} of {parent}{words}"
    if src.get("action") == "finalize":
        return f":material/high_quality: Finalized from draft {parent}: the same seed and segments, full size"
    return None


FRAME_PHASES = {"decode": "decoded", "encode": "encoded", "stitch": "encoded"}


def progress(job: dict) -> None:
    p = job.get("progress") or {}
    if job["status"] == "starting":
        pos = job.get("queue_position")
        st.progress(0.0, text=f"Waiting in the queue: position {pos}" if pos else "Waiting for a worker")
        return
    percent = float(p.get("percent") or 0.0)
    if job.get("cancel_requested"):
        label = "canceling (stops within one step)…"
    elif not p.get("total_steps") or p.get("phase") == "prepare":
        label = "preparing: reading the inputs and encoding the prompt…"
    else:
        label = f"{p.get('label') or p.get('phase')} · {counts(p)} · {percent:.0f}%"
    elapsed = _elapsed(job) or clock(p.get("elapsed_s"))
    if elapsed:
        label += f" · elapsed {elapsed}"
    eta = p.get("eta_s")
    if eta is not None and not job.get("cancel_requested"):
        label += f" · about {clock(eta)} left"
    st.progress(min(max(percent / 100.0, 0.0), 1.0), text=label)


def counts(p: dict) -> str:
    """Frames while the video is decoded and encoded, denoising steps before (the sound's decode has no count)."""
    done = FRAME_PHASES.get(p.get("phase") or "")
    if p.get("phase") == "audio":
        return "decoding the sound"
    if done:
        return f"{p.get('step')}/{p.get('total_steps')} frames {done}"
    return f"step {p.get('step')}/{p.get('total_steps')}"


def clock(seconds) -> str | None:
    if seconds is None:
        return None
    seconds = max(0, round(float(seconds)))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _elapsed(job: dict) -> str | None:
    """How long the job has been running, m:ss (the server's start time against this clock)."""
    started = job.get("started_at")
    if not started:
        return None
    try:
        since = datetime.fromisoformat(started)
    except ValueError:
        return None
    return clock((datetime.now(UTC) - since).total_seconds())


def _cancel(job_id: str) -> None:
    try:
        ui.client().cancel(job_id)
    except ApiError as exc:
        _remember_error(exc)


def _retry(job_id: str) -> None:
    try:
        new = ui.client().retry(job_id)
    except ApiError as exc:
        _remember_error(exc)
        return
    st.session_state["focus_job"] = new["id"]


def _remember_error(exc: ApiError, prefix: str = "", where: str | None = None) -> None:
    """Keep a callback's failure for the run that follows: on top of the page, or beside the control `where`."""
    st.session_state["jobs_error"] = (exc, prefix, where)


def _inline_error(where: str) -> None:
    if where in INLINE_ERRORS:
        exc, prefix = INLINE_ERRORS.pop(where)
        ui.show_error(exc, prefix=prefix)


def _retake(job_id: str, number: int) -> None:
    key = f"retake-text-{job_id}-{number}"
    text = (st.session_state.get(key) or "").strip() or None
    try:
        new = ui.client().retake_segment(job_id, number, text)
    except ApiError as exc:
        _remember_error(exc, f"Segment {number} was not retaken: ", where=f"segment-{job_id}-{number}")
        return
    st.session_state[key] = ""
    st.session_state["focus_job"] = new["id"]


def _finalize(job_id: str) -> None:
    mode = st.session_state.get(f"finalize-mode-{job_id}") or "two-stage"
    try:
        new = ui.client().finalize(job_id, mode=mode)
    except ApiError as exc:
        _remember_error(exc, "The draft was not finalized: ", where=f"finalize-{job_id}")
        return
    st.session_state["focus_job"] = new["id"]


def _open(job_id: str) -> None:
    st.session_state["focus_job"] = job_id


def actions(job: dict) -> None:
    if job["status"] in ui.ACTIVE:
        st.button(
            "Cancel",
            key=f"cancel-{job['id']}",
            icon=":material/stop_circle:",
            on_click=_cancel,
            args=(job["id"],),
            disabled=bool(job.get("cancel_requested")),
        )
    elif job["status"] in ("failed", "canceled"):
        st.button("Retry", key=f"retry-{job['id']}", icon=":material/replay:", on_click=_retry, args=(job["id"],))


def finalize_controls(job: dict) -> None:
    """A draft's way to the real thing: the same seed and segments at full size and the chosen quality."""
    inp = ui.job_input(job)
    with st.container(horizontal=True, vertical_alignment="bottom", key=f"finalize-row-{job['id']}"):
        st.selectbox(
            "Finalize as",
            list(FINALIZE_MODES),
            format_func=FINALIZE_MODES.get,
            key=f"finalize-mode-{job['id']}",
            width=260,
        )
        st.button(
            "Finalize",
            key=f"finalize-{job['id']}",
            type="primary",
            icon=":material/high_quality:",
            on_click=_finalize,
            args=(job["id"],),
            help=f"Render it again at {inp.get('width')}×{inp.get('height')}: the same seed and segments "
            "(retakes included), as a new job.",
        )
    _inline_error(f"finalize-{job['id']}")


def segment_list(job: dict, *, expanded: bool) -> None:
    """A finished script's segments, each with a retake (optionally with new words)."""
    segments = segments_of(job)
    with st.expander(f"{len(segments)} segments", expanded=expanded, icon=":material/splitscreen:"):
        st.caption(
            "Retake a segment to make just that part again (new words if you type them, else the same "
            "words with a new seed); the other segments are reused as they are, in a new job."
        )
        for seg in segments:
            n = seg.get("number")
            with st.container(key=f"segment-{job['id']}-{n}"):
                info, edit, button = st.columns([6, 4, 2], vertical_alignment="center")
                flags = f" · take {seg.get('take', 1)}" + (" · reused" if seg.get("reused") else "")
                info.markdown(
                    f"**{n}** · {ui.clock(seg.get('start'))}–{ui.clock(seg.get('end'))}{flags}  \n"
                    f"{ui.md_escape(seg.get('text'))}"
                )
                edit.text_input(
                    f"New text for segment {n} (optional)",
                    key=f"retake-text-{job['id']}-{n}",
                    max_chars=1000,
                    label_visibility="collapsed",
                    placeholder="New words (optional: empty keeps them)",
                )
                button.button(
                    "Retake",
                    key=f"retake-{job['id']}-{n}",
                    icon=":material/restart_alt:",
                    on_click=_retake,
                    args=(job["id"], n),
                )
                _inline_error(f"segment-{job['id']}-{n}")


def card(job: dict, *, focused: bool = False, watch: bool = False) -> None:
    with st.container(border=True, key=f"job-{job['id']}"):
        thumb = ui.thumbnail(job) if job["status"] == "succeeded" else None
        if thumb is not None:
            picture, head, buttons = st.columns([1, 6, 1], vertical_alignment="center")
            picture.image(thumb, width=96)
        else:
            head, buttons = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"**{ui.STATUS_LABEL.get(job['status'], job['status'])}** · {ui.short(ui.headline(job))}")
        head.caption(describe(job))
        if line := source_line(job):
            src = job["input"]["source"]["prediction"]
            head.button(
                line,
                key=f"source-{job['id']}",
                type="tertiary",
                on_click=_open,
                args=(src,),
                help="Open the job it was made from",
            )
        with buttons:
            actions(job)
        if job["status"] in ui.ACTIVE:
            progress(job)
        elif job["status"] == "failed":
            st.error(ui.plain_error(job), icon=":material/error:")
        elif job["status"] == "succeeded":
            seconds = (job.get("metrics") or {}).get("predict_time")
            made = f"made in {seconds:.1f} s" if seconds else "made"
            if focused:  # the bar the person watched ends full, not gone
                st.progress(1.0, text=f"done · 100% · {made}")
            else:
                st.caption(made)
            if focused or watch or st.toggle("Show video", key=f"watch-{job['id']}"):
                ui.video_player(job, width=640)
            if (job.get("input") or {}).get("draft"):
                finalize_controls(job)
            if segments_of(job):
                segment_list(job, expanded=focused)


def _fetch_active() -> list[dict]:
    jobs = ui.client().predictions(status=list(ui.ACTIVE), limit=200)["results"]
    # Running first, then the queue in the order a worker takes it.
    return sorted(jobs, key=lambda j: (j["status"] != "processing", j.get("queue_position") or 0))


st.title("Jobs")
if "jobs_error" in st.session_state:
    error, error_prefix, error_where = st.session_state.pop("jobs_error")
    if error_where is None:
        ui.show_error(error, prefix=error_prefix)
    else:
        INLINE_ERRORS[error_where] = (error, error_prefix)

try:
    active = _fetch_active()
except ApiError as exc:
    ui.show_error(exc, prefix="The jobs could not be loaded: ")
    st.stop()

if linked := st.query_params.get("prediction"):  # a job document's urls.web: this page, that job on top
    st.session_state["focus_job"] = linked
    del st.query_params["prediction"]
focus_id = st.session_state.get("focus_job")
focus_doc = None
if focus_id and not any(j["id"] == focus_id for j in active):
    try:
        focus_doc = ui.client().prediction(focus_id)
    except ApiError:
        st.session_state.pop("focus_job", None)  # deleted or reset meanwhile

if focus_doc is not None:
    st.subheader("Your clip")
    card(focus_doc, focused=True)


def _live() -> None:
    """Reruns alone every POLL_S while anything is queued or running; a job that finishes reruns the page so
    it moves down to the finished list (and the focused one shows its video)."""
    try:
        jobs = _fetch_active()
    except ApiError as exc:
        ui.show_error(exc)
        return
    if [j["id"] for j in jobs] != st.session_state.get("jobs_active_ids"):
        st.rerun()  # the page's lists are older than this: draw it all again
    st.subheader(f"Queue ({len(jobs)})")
    if not jobs:
        st.caption("Nothing is queued or running.")
    for job in jobs:
        card(job, focused=job["id"] == focus_id)


st.session_state["jobs_active_ids"] = [j["id"] for j in active]
# Idle, it still looks now and then, so jobs queued from elsewhere (API, n8n, another browser) show up.
st.fragment(_live, run_every=ui.POLL_S if active else 5.0)()


def _finished() -> None:
    """The finished jobs, read again every FINISHED_REFRESH_S so their times and newcomers stay current."""
    try:
        jobs = [j for j in ui.client().predictions(limit=RECENT)["results"] if j["status"] in ui.TERMINAL]
    except ApiError as exc:
        ui.show_error(exc)
        return
    st.subheader("Finished")
    others = [j for j in jobs if j["id"] != focus_id]  # the focused one is shown above
    if not others:
        st.caption("No other finished jobs." if focus_doc is not None else "No finished jobs yet.")
    for job in others:
        card(job)
    for error, error_prefix in INLINE_ERRORS.values():  # its job is no longer listed: say it here, not nowhere
        ui.show_error(error, prefix=error_prefix)
    INLINE_ERRORS.clear()


st.fragment(_finished, run_every=FINISHED_REFRESH_S)()
