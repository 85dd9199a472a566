"""Workspace: disk use and item counts, cleaning temp files (and finished jobs, after a confirmation that says
how many), and a typed master reset."""

from __future__ import annotations

import streamlit as st

from frontend import ui
from frontend.client import ApiError

RESET_WORD = "RESET"  # what the API's /master-reset wants in its confirm field


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _clean(outputs_too: bool) -> None:
    try:
        done = ui.client().clean_workspace(include_outputs=outputs_too)
    except ApiError as exc:
        st.session_state["workspace_error"] = exc
    else:
        st.session_state["workspace_result"] = (
            f"Cleaned: {done.get('files_removed', 0)} files removed ({done.get('uploads_removed', 0)} unused "
            f"uploads), {done.get('jobs_deleted', 0)} jobs deleted."
            + (
                f" The deleted jobs' videos can be restored for {done['trash_days']:g} days (Gallery → Recently "
                "deleted)."
                if done.get("jobs_deleted") and done.get("trash_days")
                else ""
            )
        )
    st.session_state.pop("clean_confirm", None)


def _ask(on: bool) -> None:
    if on:
        st.session_state["clean_confirm"] = True
    else:
        st.session_state.pop("clean_confirm", None)


st.title("Workspace")
if result := st.session_state.pop("workspace_result", None):
    st.success(result, icon=":material/check_circle:")
if error := st.session_state.pop("workspace_error", None):
    ui.show_error(error, prefix="Cleaning failed: ")

try:
    c = ui.client()
    ws = c.workspace_status()
    clips, trainings = c.count("predictions"), c.count("trainings")
except ApiError as exc:
    ui.show_error(exc, prefix="The workspace could not be read: ")
    st.stop()

jobs = ws.get("jobs") or {}
a, b, cc, d = st.columns(4)
a.metric(
    "Videos on disk",
    ws.get("videos", 0),
    border=True,
    help="MP4 files in the outputs folder: every finished clip, retake and finalized version.",
)
b.metric(
    "Outputs on disk",
    ui.human_bytes(ws.get("outputs_bytes")),
    border=True,
    help="Videos with their thumbnails, caption files and metadata.",
)
cc.metric(
    "Uploads",
    f"{ws.get('uploads', 0)} · {ui.human_bytes(ws.get('uploads_bytes'))}",
    border=True,
    help="Reference photos, recordings and training photos sent to the server.",
)
d.metric("Disk free", ui.human_bytes(ws.get("disk_free_bytes")), border=True)
e, f, g, h, i = st.columns(5)
e.metric("Temp files", f"{ws.get('temp_files', 0)} · {ui.human_bytes(ws.get('temp_bytes'))}", border=True)
if ws.get("trash"):
    st.caption(
        f":material/restore_from_trash: {_plural(ws['trash'], 'deleted job')} in the trash "
        f"({ui.human_bytes(ws.get('trash_bytes'))}), restorable from Gallery → Recently deleted until "
        f"{ws.get('trash_days', 0):g} days after deletion."
    )
f.metric(
    "Jobs waiting / running",
    f"{jobs.get('starting', 0)} / {jobs.get('processing', 0)}",
    border=True,
    help="Clips and trainings together.",
)
g.metric(
    "Clips made",
    clips.get("succeeded", 0),
    border=True,
    help="Finished video jobs. Each made one video; a retake or finalized version is a clip of its own.",
)
h.metric(
    "Face trainings done",
    trainings.get("succeeded", 0),
    border=True,
    help="Finished trainings. They make face profiles, not videos.",
)
i.metric(
    "Failed / canceled",
    f"{jobs.get('failed', 0)} / {jobs.get('canceled', 0)}",
    border=True,
    help="Clips and trainings together.",
)

with st.container(border=True, key="faces_kept"):
    st.subheader("Faces and voices kept")
    used, unused, in_profiles = ws.get("uploads_in_use", 0), ws.get("uploads_unused", 0), ws.get("profile_photos", 0)
    st.write(
        f"**{_plural(used, 'upload')}** (reference photos, recordings, training photos) used by jobs or face "
        f"profiles, **{unused}** used by nothing (Clean removes them), and **{_plural(in_profiles, 'photo')}** "
        "inside trained face profiles. Deleting a job deletes the uploads only it used; deleting a profile deletes "
        "its photos and LoRA."
    )
    st.caption(f"Uploads: `{ws.get('uploads_folder', '?')}` · face profiles: `{ws.get('profiles_folder', '?')}`")
    days = ws.get("retention_days")
    st.caption(
        f"Finished jobs' inputs are deleted {days:g} days after the job ends (AVATAR_RETENTION_DAYS)."
        if days
        else "Inputs are kept until their job or profile is deleted (set AVATAR_RETENTION_DAYS to expire them)."
    )

finished = sum(jobs.get(s, 0) for s in ui.TERMINAL)
with st.container(border=True):
    st.subheader("Clean")
    st.write(
        "Empties the temp folder and deletes uploads no job or profile uses. Optionally also deletes every "
        "finished, failed or canceled job with its video, thumbnail, captions, metadata and the uploads only it "
        "used (waiting and running jobs and trained face profiles are kept)."
    )
    outputs_too = st.checkbox(
        "Also delete finished jobs and their videos",
        key="clean_outputs",
        on_change=lambda: st.session_state.pop("clean_confirm", None),
    )
    if not outputs_too:
        st.button("Clean temp files", icon=":material/cleaning_services:", key="clean", on_click=_clean, args=(False,))
    elif not st.session_state.get("clean_confirm"):
        st.button(
            "Clean…",
            icon=":material/cleaning_services:",
            key="clean",
            on_click=_ask,
            args=(True,),
            disabled=not finished and not ws.get("temp_files"),
            help="Asks first, saying how much will be deleted.",
        )
        if not finished:
            st.caption("There are no finished jobs to delete.")
    else:
        parts = [_plural(clips.get("succeeded", 0), "finished clip")]
        if trainings.get("succeeded"):
            parts.append(_plural(trainings["succeeded"], "finished training"))
        failed = jobs.get("failed", 0) + jobs.get("canceled", 0)
        if failed:
            parts.append(f"{failed} failed or canceled")
        with st.container(border=True, key="clean_confirm_box"):
            st.warning(
                f"This deletes **{_plural(finished, 'job')}** ({', '.join(parts)}) and "
                f"**{_plural(ws.get('videos', 0), 'video')}** ({ui.human_bytes(ws.get('outputs_bytes'))} on "
                "disk), plus the temp files. "
                + (
                    f"The videos stay restorable for {ws['trash_days']:g} days (Gallery → Recently deleted), "
                    "then they are gone for good."
                    if ws.get("trash_days")
                    else "It cannot be undone: download what you want to keep first (Gallery, or `avatar pull`)."
                ),
                icon=":material/warning:",
            )
            with st.container(horizontal=True):
                st.button(
                    f"Delete {_plural(finished, 'job')} and clean",
                    type="primary",
                    key="clean_yes",
                    icon=":material/delete:",
                    on_click=_clean,
                    args=(True,),
                )
                st.button("Keep them", key="clean_no", on_click=_ask, args=(False,))

with st.container(border=True):
    st.subheader(":red[Master reset]")
    st.write(
        "Cancels all work, then deletes **every** job, upload, video and trained face profile on the server. "
        "This cannot be undone. Copy what you want to keep first (`avatar pull`)."
    )
    typed = st.text_input(f"Type {RESET_WORD} to confirm", key="reset_confirm", live=True)
    if not typed:
        st.caption(f"The button unlocks when this box says {RESET_WORD}, in capital letters.")
    elif typed != RESET_WORD:
        why = (
            f"Type it in capital letters: {RESET_WORD}."
            if typed.strip().upper() == RESET_WORD
            else f"That is not {RESET_WORD}."
        )
        st.markdown(
            f":orange[:material/lock: {why} The word must match exactly, so a reset never happens by accident.]"
        )
    if st.button(
        "Delete everything", type="primary", icon=":material/delete_forever:", key="reset", disabled=typed != RESET_WORD
    ):
        try:
            with st.spinner("Stopping work and deleting…"):
                done = ui.client().master_reset(typed)
        except ApiError as exc:
            ui.show_error(exc, prefix="The reset did not happen: ")
        else:
            for key in ("focus_job", "reset_confirm"):
                st.session_state.pop(key, None)
            st.session_state["workspace_result"] = (
                f"Reset done: {done.get('canceled_jobs', 0)} jobs canceled, "
                f"{done.get('files_removed', 0)} files removed."
            )
            st.rerun()
