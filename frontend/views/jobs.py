"""Jobs: the queue with positions, live progress of the running job, cancel and retry, errors in words."""

from __future__ import annotations

import streamlit as st

from frontend import ui
from frontend.client import ApiError

RECENT = 30


def describe(job: dict) -> str:
    inp = job.get("input") or {}
    who = ("voice recording" if inp.get("audio") else f"profile {inp['profile']}" if inp.get("profile")
           else "reference photo" if inp.get("image") else "random avatar")
    mode = "final" if inp.get("mode") == "two-stage" else "draft"
    size = f"{inp.get('width')}×{inp.get('height')}"
    return (f"{who} · {size} · seed {inp.get('seed')} · {inp.get('speed', 1):g}× · {mode} · "
            f"created {ui.when(job.get('created_at'))} · `{job['id']}`")


def progress(job: dict) -> None:
    p = job.get("progress") or {}
    if job["status"] == "starting":
        pos = job.get("queue_position")
        st.progress(0.0, text=f"Waiting in the queue: position {pos}" if pos else "Waiting for a worker")
        return
    percent = float(p.get("percent") or 0.0)
    if job.get("cancel_requested"):
        label = "canceling (stops within one step)…"
    elif not p.get("total_steps"):
        label = "preparing: reading the inputs and encoding the prompt…"
    elif percent >= 100:
        label = f"{p.get('phase')} · step {p.get('step')}/{p.get('total_steps')} · 100% · writing the MP4…"
    else:
        label = f"{p.get('phase')} · step {p.get('step')}/{p.get('total_steps')} · {percent:.0f}%"
    st.progress(min(max(percent / 100.0, 0.0), 1.0), text=label)


def _cancel(job_id: str) -> None:
    try:
        ui.client().cancel(job_id)
    except ApiError as exc:
        st.session_state["jobs_error"] = exc


def _retry(job_id: str) -> None:
    try:
        new = ui.client().retry(job_id)
    except ApiError as exc:
        st.session_state["jobs_error"] = exc
        return
    st.session_state["focus_job"] = new["id"]


def actions(job: dict) -> None:
    if job["status"] in ui.ACTIVE:
        st.button("Cancel", key=f"cancel-{job['id']}", icon=":material/stop_circle:", on_click=_cancel,
                  args=(job["id"],), disabled=bool(job.get("cancel_requested")))
    elif job["status"] in ("failed", "canceled"):
        st.button("Retry", key=f"retry-{job['id']}", icon=":material/replay:", on_click=_retry, args=(job["id"],))


def card(job: dict, *, focused: bool = False, watch: bool = False) -> None:
    with st.container(border=True, key=f"job-{job['id']}"):
        head, buttons = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"**{ui.STATUS_LABEL.get(job['status'], job['status'])}** · "
                      f"{ui.short(job['input'].get('text'))}")
        head.caption(describe(job))
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


def _fetch_active() -> list[dict]:
    jobs = ui.client().predictions(status=list(ui.ACTIVE), limit=200)["results"]
    # Running first, then the queue in the order a worker takes it.
    return sorted(jobs, key=lambda j: (j["status"] != "processing", j.get("queue_position") or 0))


st.title("Jobs")
if "jobs_error" in st.session_state:
    ui.show_error(st.session_state.pop("jobs_error"))

try:
    active = _fetch_active()
    recent = [j for j in ui.client().predictions(limit=RECENT)["results"] if j["status"] in ui.TERMINAL]
except ApiError as exc:
    ui.show_error(exc, prefix="The jobs could not be loaded: ")
    st.stop()

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

st.subheader("Finished")
others = [j for j in recent if j["id"] != focus_id]  # the focused one is shown above
if not others:
    st.caption("No other finished jobs." if focus_doc is not None else "No finished jobs yet.")
for job in others:
    card(job)
