"""Gallery: every finished clip, playable here, with its parameters, download, re-run (same seed) and delete."""

from __future__ import annotations

import streamlit as st

from frontend import ui
from frontend.client import ApiError

PER_PAGE = 6
MAX_LISTED = 200  # the API's page limit; older clips are reached with `avatar pull` or the API's cursor


def parameters(job: dict) -> dict:
    inp, out = job.get("input") or {}, job.get("output") or {}
    meta = out.get("metadata") or {}
    rows = {
        "text": inp.get("text"),
        "seed": inp.get("seed"),
        "size": f"{inp.get('width')}×{inp.get('height')}",
        "frames": f"{meta.get('num_frames')} at {meta.get('fps', inp.get('fps'))} fps",
        "playback speed": f"{inp.get('speed', 1):g}×",
        "quality": ("draft (distilled, half size)" if inp.get("draft") else
                    "final (two-stage)" if inp.get("mode") == "two-stage" else "fast (distilled)"),
        "segments": len(out["segments"]) if out.get("segments") else None,
        "captions": " + ".join(c.upper() for c in inp.get("captions") or []) or None,
        "captions burned in": "yes" if inp.get("burn_captions") else None,
        "crossfade": f"{inp['crossfade']:g} s" if inp.get("crossfade") else None,
        "made from": _source(inp.get("source")),
        "reference photo": "yes" if inp.get("image") else "no",
        "photo strength": inp.get("image_strength") if inp.get("image") else None,
        "face anchors": inp.get("keyframe_anchors") or None,
        "description": inp.get("avatar_description"),
        "face profile": inp.get("profile"),
        "voice recording": "yes" if inp.get("audio") else None,
        "model": meta.get("model"),
        "pipeline": meta.get("pipeline"),
        "render time": f"{meta['timings']['total_s']:.1f} s" if (meta.get("timings") or {}).get("total_s") else None,
        "file size": ui.human_bytes(out.get("size")),
        "sha256": out.get("sha256"),
        "made": job.get("completed_at"),
        "id": job["id"],
    }
    return {k: str(v) for k, v in rows.items() if v not in (None, "")}


def _source(src: dict | None) -> str | None:
    if not src:
        return None
    if src.get("action") == "retake":
        return f"retake of segment {src.get('segment')} of {src.get('prediction')}"
    return f"{src.get('action')} of {src.get('prediction')}"


def _rerun_same_seed(job: dict) -> None:
    try:
        new = ui.client().create_prediction(job["input"])
    except ApiError as exc:
        st.session_state["gallery_error"] = exc
        return
    st.session_state["gallery_jump"] = new["id"]


def _delete(job_id: str) -> None:
    try:
        ui.client().delete(job_id)
    except ApiError as exc:
        st.session_state["gallery_error"] = exc
        return
    st.session_state["gallery_deleted"] = job_id


def tile(job: dict) -> None:
    with st.container(border=True, key=f"clip-{job['id']}"):
        st.markdown(f"**{ui.short(job['input'].get('text'), 70)}**")
        meta = (job.get("output") or {}).get("metadata") or {}
        if meta.get("tiny_checkpoint"):
            st.caption(":material/science: made with the tiny test checkpoint (noise)")
        ui.video_player(job)
        with st.expander("Parameters"):
            ui.kv_table(parameters(job))
        with st.container(horizontal=True, vertical_alignment="center"):
            st.button("Re-run (same seed)", key=f"rerun-{job['id']}", icon=":material/replay:",
                      on_click=_rerun_same_seed, args=(job,),
                      help="The same text, photo, settings and seed, as a new job")
            with st.popover("Delete", icon=":material/delete:", key=f"delpop-{job['id']}"):
                st.write("Delete this clip and its files from the server?")
                st.button("Delete for good", key=f"delete-{job['id']}", type="primary", on_click=_delete,
                          args=(job["id"],))
            st.caption(ui.when(job.get("completed_at")))


if jump := st.session_state.pop("gallery_jump", None):
    ui.focus(jump)

st.title("Gallery")
if "gallery_error" in st.session_state:
    ui.show_error(st.session_state.pop("gallery_error"))
if deleted := st.session_state.pop("gallery_deleted", None):
    st.toast(f"Deleted {deleted}", icon=":material/delete:")

try:
    clips = ui.client().predictions(status=["succeeded"], limit=MAX_LISTED)["results"]
except ApiError as exc:
    ui.show_error(exc, prefix="The gallery could not be loaded: ")
    st.stop()

if not clips:
    st.info("No finished clips yet.", icon=":material/video_library:")
    st.page_link(ui.PAGES["create"], label="Create one", icon=":material/movie_edit:")
    st.stop()

pages = (len(clips) + PER_PAGE - 1) // PER_PAGE
st.caption(f"{len(clips)} clip{'s' if len(clips) != 1 else ''}" + (" (newest 200)" if len(clips) >= MAX_LISTED else ""))
page = st.pagination(pages, key="gallery_page") if pages > 1 else 1
page = min(page, pages)  # after deletes the remembered page may be gone
shown = clips[(page - 1) * PER_PAGE: page * PER_PAGE]
columns = st.columns(2)
for i, job in enumerate(shown):
    with columns[i % 2]:
        tile(job)
