"""Face profiles: 3–10 photos with per-photo feedback, training with a live loss chart, list and delete."""

from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from frontend import ui, uploads
from frontend.client import ApiError, Upload

MIN_PHOTOS, MAX_PHOTOS = 3, 10
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}[A-Za-z0-9]$|^[A-Za-z0-9]$")  # the API's rule, said early


LOSS_GUIDE = (
    "**Reading the loss.** Each step the model tries to undo noise on one of your photos; the loss is how far "
    "off it was. Single steps jump up and down (a different photo and noise level each time), so follow the "
    "smoothed loss. A good run on a GPU (a few hundred steps) drifts down over the first hundred steps and then "
    "levels off; the validation loss, on a photo held back from training, should end near the final loss. On a "
    "short try (tens of steps, 3–5 photos) a flat or even rising line is noise, not a failure, and says little "
    "about the profile: judge it by a clip made with it."
)


def photo_grid(files) -> int:
    """Thumbnails with a verdict under each; returns how many passed the local checks."""
    server_says = st.session_state.get("train_problems", {})
    checked = st.session_state.get("train_checked", set())  # names the server has looked at
    good = 0
    columns = st.columns(5)
    for i, f in enumerate(files):
        data = f.getvalue()
        problem, description = uploads.image_problem(data)
        with columns[i % 5]:
            if problem is None:
                st.image(data, width=120)
            if problem:
                st.markdown(f":red[:material/cancel: **{f.name}**: {problem}]")
            elif f.name in server_says:
                st.markdown(f":red[:material/cancel: **{f.name}**: {server_says[f.name]}]")
            elif f.name in checked:
                good += 1
                st.markdown(f":green[:material/check_circle:] {f.name}: one face found")
            else:
                good += 1
                st.markdown(f":material/image: {f.name}")
            st.caption(description)
    return good


def loss_curve(job: dict) -> pd.DataFrame | None:
    """The training-loss points. After training the worker appends validation/export points whose step counter
    starts again, so only the rising run of steps is training."""
    points, last = [], 0
    for step, loss in (job.get("progress") or {}).get("curve") or []:
        if step <= last:
            break
        points.append((step, loss))
        last = step
    return pd.DataFrame(points, columns=["step", "loss"]) if points else None


def loss_chart(curve: pd.DataFrame, steps: int):
    """Loss per step over the whole run's x range, so the line grows left to right as training goes."""
    import altair as alt

    return (
        alt.Chart(curve, height=220)
        .mark_line(point=True)
        .encode(
            x=alt.X(
                "step:Q",
                scale=alt.Scale(domain=[1, max(steps, 2)]),
                title="step",
                axis=alt.Axis(format="d", tickMinStep=1),
            ),
            y=alt.Y("loss:Q", scale=alt.Scale(zero=False), title="training loss", axis=alt.Axis(format=".3f")),
            tooltip=["step", "loss"],
        )
    )


def _loss(value) -> str:
    return f"{value:.4f}" if value is not None else "–"


def training_card(job: dict) -> None:
    p = job.get("progress") or {}
    name = job["input"].get("name")
    with st.container(border=True, key=f"training-{job['id']}"):
        head, cancel = st.columns([5, 1], vertical_alignment="center")
        head.markdown(f"**{name}** · {ui.STATUS_LABEL.get(job['status'], job['status'])}")
        head.caption(
            f"{len(job['input'].get('photos') or [])} photos · {job['input'].get('steps')} steps · "
            f"started {ui.when(job.get('started_at') or job.get('created_at'))} · `{job['id']}`"
        )
        if job["status"] in ui.ACTIVE:
            cancel.button(
                "Cancel",
                key=f"cancel-train-{job['id']}",
                icon=":material/stop_circle:",
                on_click=_cancel,
                args=(job["id"],),
                disabled=bool(job.get("cancel_requested")),
            )
            if job["status"] == "starting":
                st.progress(0.0, text=f"Waiting in the queue: position {job.get('queue_position') or '?'}")
            else:
                percent = float(p.get("percent") or 0)
                st.progress(
                    min(percent / 100, 1.0),
                    text=f"{p.get('phase') or 'starting'} · step "
                    f"{p.get('step')}/{p.get('total_steps')} · {percent:.0f}%",
                )
        elif job["status"] == "failed":
            st.error(ui.plain_error(job), icon=":material/error:")
        m1, m2, m3 = st.columns(3)
        if job["status"] == "succeeded":
            out = job.get("output") or {}
            m1.metric("First loss", _loss(out.get("first_loss")))
            m2.metric("Final loss", _loss(out.get("final_loss")))
            m3.metric("Validation loss", _loss(out.get("validation_loss")))
        else:
            eta = p.get("eta_s")
            m1.metric("Loss", _loss(p.get("loss")))
            m2.metric("Smoothed loss", _loss(p.get("smoothed_loss")))
            m3.metric("Time left", f"{eta:.0f} s" if eta is not None and job["status"] in ui.ACTIVE else "–")
        curve = loss_curve(job)
        if curve is not None:
            st.altair_chart(loss_chart(curve, int(job["input"].get("steps") or curve["step"].max())))
            with st.expander("What a good run looks like", icon=":material/help:"):
                st.markdown(LOSS_GUIDE)


def _forget_verdicts() -> None:
    for key in ("train_problems", "train_checked"):
        st.session_state.pop(key, None)


def _cancel(job_id: str) -> None:
    try:
        ui.client().cancel_training(job_id)
    except ApiError as exc:
        st.session_state["profiles_error"] = exc


def _delete(name: str) -> None:
    try:
        ui.client().delete_profile(name)
    except ApiError as exc:
        st.session_state["profiles_error"] = exc


def _use(name: str) -> None:
    st.session_state["create_mode"] = "profile"
    st.session_state["create_profile"] = name
    st.session_state["profiles_jump"] = True


def _active_trainings() -> list[dict]:
    return [j for j in ui.client().trainings(limit=20)["results"] if j["status"] in ui.ACTIVE]


if st.session_state.pop("profiles_jump", False):
    st.switch_page(ui.PAGES["create"])
if st.session_state.pop("train_started", False):
    # A fresh form for the next profile: a new uploader key empties it (its files cannot be set from code).
    st.session_state["train_form"] = st.session_state.get("train_form", 0) + 1
    st.session_state["train_name"] = ""

st.title("Face profiles")
if "profiles_error" in st.session_state:  # rejected photos are named under their thumbnails below
    ui.show_error(st.session_state.pop("profiles_error"), list_problems=False)

# --- new profile ----------------------------------------------------------------------------------------------
with st.container(border=True):
    st.subheader("Train a new profile")
    st.caption(
        "3–10 sharp photos of one person, each showing exactly one face, the shorter side at least 256 px. "
        "Different angles and light help. The server checks the faces when you start."
    )
    name = st.text_input(
        "Profile name",
        key="train_name",
        max_chars=64,
        placeholder="e.g. Ada",
        help="Letters, digits, space, _ . - (the clip prompt gets a trigger word made from it)",
    )
    files = st.file_uploader(
        "Photos",
        type=["png", "jpg", "jpeg", "webp"],
        accept_multiple_files=True,
        key=f"train_photos_{st.session_state.get('train_form', 0)}",
        on_change=_forget_verdicts,
    )
    files = files or []
    good = photo_grid(files) if files else 0
    if files and not MIN_PHOTOS <= len(files) <= MAX_PHOTOS:
        st.warning(f"{len(files)} photo{'s' if len(files) != 1 else ''}: a profile needs {MIN_PHOTOS}–{MAX_PHOTOS}.")
    steps, steps_ok = ui.bounded_number(
        st,
        "Training steps",
        10,
        2000,
        "train_steps",
        default=300,
        step=10,
        help="300 suits most faces on a GPU; a few tens are enough to try it out",
    )
    with st.expander("Advanced"):
        rank, rank_ok = ui.bounded_number(st, "LoRA rank", 1, 128, "train_rank", default=16)
        lr, lr_ok = ui.bounded_number(
            st, "Learning rate", 1e-6, 1e-2, "train_lr", default=1e-4, step=1e-5, format="%.0e"
        )
    name_ok = bool(NAME.match((name or "").strip()))
    if name and not name_ok:
        st.caption(
            ":red[The name may use letters, digits, space, _ . - and must start and end with a letter or digit.]"
        )
    missing = []
    if not name_ok:
        missing.append("a valid profile name" if name else "a profile name")
    if len(files) < MIN_PHOTOS:
        missing.append(
            f"{MIN_PHOTOS - len(files)} more photo{'s' if MIN_PHOTOS - len(files) != 1 else ''} "
            f"({MIN_PHOTOS}–{MAX_PHOTOS} in all)"
        )
    elif len(files) > MAX_PHOTOS:
        missing.append(
            f"{len(files) - MAX_PHOTOS} photo{'s' if len(files) - MAX_PHOTOS != 1 else ''} fewer (at most {MAX_PHOTOS})"
        )
    if good < len(files):
        missing.append(
            f"the {len(files) - good} photo{'s' if len(files) - good != 1 else ''} marked in red removed or replaced"
        )
    if not (steps_ok and rank_ok and lr_ok):
        missing.append("the numbers above in their ranges")
    ready = not missing
    if missing:
        st.caption(":material/info: To start training, it still needs " + "; ".join(missing) + ".")
    if st.button(
        "Start training", type="primary", icon=":material/model_training:", disabled=not ready, key="train_start"
    ):
        uploads = [Upload(f.name, f.getvalue(), f.type or "image/png") for f in files]
        try:
            with st.spinner("Checking the photos and queueing the training…"):
                ui.client().start_training(name.strip(), uploads, int(steps), rank=int(rank), learning_rate=float(lr))
        except ApiError as exc:
            if exc.problems:  # the server's verdict per photo goes under each thumbnail; it lists every bad one
                st.session_state["train_problems"] = {p.get("photo"): p.get("reason") for p in exc.problems}
                st.session_state["train_checked"] = {f.name for f in files}
            st.session_state["profiles_error"] = exc
        else:
            _forget_verdicts()
            st.session_state["train_started"] = True
            st.toast(f"Training {name.strip()} started", icon=":material/model_training:")
        st.rerun()

# --- trainings ------------------------------------------------------------------------------------------------
try:
    trainings = ui.client().trainings(limit=20)["results"]  # one read, so no run is both active and finished
except ApiError as exc:
    ui.show_error(exc, prefix="Trainings could not be loaded: ")
    st.stop()


def _live() -> None:
    try:
        jobs = _active_trainings()
    except ApiError as exc:
        ui.show_error(exc)
        return
    ids = [j["id"] for j in jobs]
    if ids != st.session_state.get("train_active_ids"):
        st.session_state["train_active_ids"] = ids
        st.rerun()  # one finished (its profile appears below) or one was added elsewhere
    if jobs:
        st.subheader("Training now")
    for job in jobs:
        training_card(job)


active = [j for j in trainings if j["status"] in ui.ACTIVE]
finished = [j for j in trainings if j["status"] in ui.TERMINAL][:6]
st.session_state["train_active_ids"] = [j["id"] for j in active]
st.fragment(_live, run_every=ui.POLL_S if active else 5.0)()

if finished:
    # How the last run went (its whole loss curve, or why it failed) stays on the page after it ends.
    st.subheader("Latest training")
    training_card(finished[0])
    earlier = [j for j in finished[1:] if j["status"] != "succeeded"]
    if earlier:
        with st.expander(f"Earlier failed or canceled trainings ({len(earlier)})"):
            for job in earlier:
                training_card(job)

# --- profiles -------------------------------------------------------------------------------------------------
st.subheader("Profiles")
try:
    profiles = ui.client().profiles()
except ApiError as exc:
    ui.show_error(exc, prefix="Profiles could not be listed: ")
    st.stop()
if not profiles:
    st.caption("No face profiles yet.")
columns = st.columns(3)
for i, profile in enumerate(profiles):
    with columns[i % 3], st.container(border=True, key=f"profile-{profile['name']}"):
        left, right = st.columns([1, 2])
        try:
            left.image(ui.profile_photo(profile), width=120)
        except ApiError:
            left.caption("(photo unavailable)")
        right.markdown(f"**{profile['name']}**")
        loss = profile.get("final_loss")
        val = profile.get("validation_loss")
        right.caption(
            f"trigger `{profile['trigger']}` · {profile['photos']} photos · {profile['steps']} steps · "
            f"final loss {loss:.4f}"
            if loss is not None
            else f"trigger `{profile['trigger']}`"
        )
        if val is not None:
            right.caption(f"validation loss {val:.4f} · {ui.when(profile.get('created_at'))}")
        # The actions come before the preview frame: a popover opened at the foot of a tall card on a
        # scrolled page lands below the fold.
        a, b = st.columns(2)
        a.button(
            "Use in Create",
            key=f"use-{profile['name']}",
            icon=":material/movie_edit:",
            on_click=_use,
            args=(profile["name"],),
        )
        with b.popover("Delete", icon=":material/delete:", key=f"delprof-pop-{profile['name']}"):
            st.write(f"Delete the profile **{profile['name']}** and its LoRA?")
            st.button(
                "Delete for good",
                key=f"delprof-{profile['name']}",
                type="primary",
                on_click=_delete,
                args=(profile["name"],),
            )
        try:
            st.image(
                ui.profile_preview(profile),
                caption=f"Preview: the first frame of a short clip made with {profile['name']} (no photo given)",
                width=240,
            )
        except ApiError:
            st.caption("No preview frame (this profile was trained before previews were made).")
