"""Workspace: disk use and item counts, cleaning temp files (and finished clips), and a typed master reset."""

from __future__ import annotations

import streamlit as st

from frontend import ui
from frontend.client import ApiError

RESET_WORD = "RESET"  # what the API's /master-reset wants in its confirm field

st.title("Workspace")
if result := st.session_state.pop("workspace_result", None):
    st.success(result, icon=":material/check_circle:")

try:
    ws = ui.client().workspace_status()
except ApiError as exc:
    ui.show_error(exc, prefix="The workspace could not be read: ")
    st.stop()

jobs = ws.get("jobs") or {}
a, b, c, d = st.columns(4)
a.metric("Videos", ws.get("videos", 0), border=True)
b.metric("Outputs on disk", ui.human_bytes(ws.get("outputs_bytes")), border=True)
c.metric("Uploads", f"{ws.get('uploads', 0)} · {ui.human_bytes(ws.get('uploads_bytes'))}", border=True)
d.metric("Disk free", ui.human_bytes(ws.get("disk_free_bytes")), border=True)
e, f, g, h = st.columns(4)
e.metric("Temp files", f"{ws.get('temp_files', 0)} · {ui.human_bytes(ws.get('temp_bytes'))}", border=True)
f.metric("Jobs waiting / running", f"{jobs.get('starting', 0)} / {jobs.get('processing', 0)}", border=True)
g.metric("Jobs done", jobs.get("succeeded", 0), border=True)
h.metric("Failed / canceled", f"{jobs.get('failed', 0)} / {jobs.get('canceled', 0)}", border=True)

with st.container(border=True):
    st.subheader("Clean")
    st.write("Empties the temp folder. Optionally also deletes every finished, failed or canceled job with its "
             "video, thumbnail and metadata (waiting and running jobs are kept).")
    outputs_too = st.checkbox("Also delete finished jobs and their videos", key="clean_outputs")
    if st.button("Clean", icon=":material/cleaning_services:", key="clean"):
        try:
            done = ui.client().clean_workspace(include_outputs=outputs_too)
        except ApiError as exc:
            ui.show_error(exc, prefix="Cleaning failed: ")
        else:
            st.session_state["workspace_result"] = (f"Cleaned: {done.get('files_removed', 0)} files removed, "
                                                    f"{done.get('jobs_deleted', 0)} jobs deleted.")
            st.rerun()

with st.container(border=True):
    st.subheader(":red[Master reset]")
    st.write("Cancels all work, then deletes **every** job, upload, video and trained face profile on the server. "
             "This cannot be undone. Copy what you want to keep first (`avatar pull`).")
    typed = st.text_input(f"Type {RESET_WORD} to confirm", key="reset_confirm", live=True, placeholder=RESET_WORD)
    if st.button("Delete everything", type="primary", icon=":material/delete_forever:", key="reset",
                 disabled=typed != RESET_WORD):
        try:
            with st.spinner("Stopping work and deleting…"):
                done = ui.client().master_reset(typed)
        except ApiError as exc:
            ui.show_error(exc, prefix="The reset did not happen: ")
        else:
            for key in ("focus_job", "reset_confirm"):
                st.session_state.pop(key, None)
            st.session_state["workspace_result"] = (f"Reset done: {done.get('canceled_jobs', 0)} jobs canceled, "
                                                    f"{done.get('files_removed', 0)} files removed.")
            st.rerun()
