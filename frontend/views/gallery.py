"""Gallery: every finished clip, playable here, its versions (re-runs, retakes, finalized renders of one text)
together on one card with thumbnails, every file it produced to download, re-run (same seed) and delete."""

from __future__ import annotations

import streamlit as st

from frontend import ui
from frontend.client import ApiError

PER_PAGE = 6
MAX_LISTED = 200  # the API's page limit; older clips are reached with `avatar pull` or the API's cursor


def parameters(job: dict) -> dict:
    inp, out = ui.job_input(job), job.get("output") or {}
    meta = out.get("metadata") or {}
    rows = {
        "text": inp.get("text"),
        "seed": inp.get("seed"),
        "size": f"{inp.get('width')}×{inp.get('height')}",
        "frames": f"{meta.get('num_frames')} at {meta.get('fps', inp.get('fps'))} fps",
        "playback speed": f"{inp.get('speed', 1):g}×",
        "quality": (
            "draft (distilled, half size)"
            if inp.get("draft")
            else "final (two-stage)"
            if inp.get("mode") == "two-stage"
            else "fast (distilled)"
        ),
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


def _open_in_jobs(job_id: str) -> None:
    st.session_state["gallery_jump"] = job_id


def version_groups(clips: list[dict]) -> list[list[dict]]:
    """Clips grouped as versions of one text: a retake or finalized render joins the clip it came from, a
    re-run joins the clips with the same words. Each group newest first; groups ordered by their newest."""
    by_id = {c["id"]: c for c in clips}

    def root(job: dict) -> dict:
        seen = set()
        while (src := (job.get("input") or {}).get("source")) and src.get("prediction") in by_id:
            if job["id"] in seen:
                break
            seen.add(job["id"])
            job = by_id[src["prediction"]]
        return job

    groups: dict[str, list[dict]] = {}
    for clip in clips:  # the API lists newest first, so each group is too
        key = " ".join(((root(clip).get("input") or {}).get("text") or "").split()).lower()
        groups.setdefault(key or clip["id"], []).append(clip)
    return list(groups.values())


def version_label(job: dict, number: int) -> str:
    src = (job.get("input") or {}).get("source") or {}
    how = {"retake": f"retake of segment {src.get('segment')}", "finalize": "finalized"}.get(src.get("action"), "")
    if (job.get("input") or {}).get("draft"):
        how = how or "draft"
    return f"Version {number}" + (f" · {how}" if how else "") + f" · {ui.when(job.get('completed_at'))}"


def _delete(job_id: str) -> None:
    try:
        ui.client().delete(job_id)
    except ApiError as exc:
        st.session_state["gallery_error"] = exc
        return
    st.session_state["gallery_deleted"] = job_id


def _restore(job_id: str) -> None:
    try:
        ui.client().restore(job_id)
    except ApiError as exc:
        st.session_state["gallery_error"] = exc
        return
    st.session_state["gallery_restored"] = job_id


def read_trash() -> dict | None:
    try:
        return ui.client().trash()
    except ApiError as exc:
        ui.show_error(exc, prefix="The trash could not be read: ")
        return None


def delete_question(trash: dict | None) -> str:
    days = (trash or {}).get("trash_days") or 0
    if days:
        return f"Delete this version? It stays under Recently deleted for {days:g} days, where you can restore it."
    return "Delete this version and its files from the server for good? (This server keeps no trash.)"


def recently_deleted(trash: dict | None) -> None:
    """The trash: deleted clips stay restorable for the server's trash_days, then the server empties it."""
    if trash is None:
        return
    entries = [e for e in trash["results"] if e["kind"] == "generate" and e["status"] == "succeeded"]  # clips
    if not entries:
        return
    with st.expander(f"Recently deleted ({len(entries)})", icon=":material/restore_from_trash:"):
        st.caption(f"Deleted clips are kept for {trash['trash_days']:g} days, then removed for good.")
        for entry in entries:
            with st.container(horizontal=True, vertical_alignment="center", key=f"trash-{entry['id']}"):
                st.markdown(
                    f"{ui.md_escape(ui.short(entry.get('text'), 70))} · deleted {ui.when(entry['deleted_at'])} · "
                    f"{ui.human_bytes(entry['bytes'])}"
                )
                st.button(
                    "Restore",
                    key=f"restore-{entry['id']}",
                    icon=":material/restore_from_trash:",
                    on_click=_restore,
                    args=(entry["id"],),
                )


def tile(versions: list[dict], trash: dict | None) -> None:
    """One card per text: the chosen version playable with its files, the others as thumbnails to pick."""
    newest = versions[0]
    with st.container(border=True, key=f"group-{versions[-1]['id']}"):
        st.markdown(f"**{ui.md_escape(ui.short(ui.headline(newest), 70))}**")
        job = newest
        if len(versions) > 1:
            numbered = {v["id"]: len(versions) - i for i, v in enumerate(versions)}  # oldest is version 1
            st.caption(f":material/layers: {len(versions)} versions of this text (re-runs, retakes, finalized)")
            pictures = [(ui.thumbnail(v), version_label(v, numbered[v["id"]])) for v in versions[:8]]
            shown = [(data, label.split(" · ")[0]) for data, label in pictures if data is not None]
            if shown:
                st.image([d for d, _ in shown], caption=[c for _, c in shown], width=88)
            chosen = st.selectbox(
                "Version",
                [v["id"] for v in versions],
                key=f"version-{versions[-1]['id']}",
                format_func=lambda i: version_label(next(v for v in versions if v["id"] == i), numbered[i]),
            )
            job = next(v for v in versions if v["id"] == chosen)
        with st.container(key=f"clip-{job['id']}"):
            meta = (job.get("output") or {}).get("metadata") or {}
            if meta.get("tiny_checkpoint"):
                st.caption(":material/science: made with the tiny test checkpoint (noise)")
            ui.video_player(job)
            with st.expander("Parameters"):
                ui.kv_table(parameters(job))
            with st.container(horizontal=True, vertical_alignment="center"):
                st.button(
                    "Re-run (same seed)",
                    key=f"rerun-{job['id']}",
                    icon=":material/replay:",
                    on_click=_rerun_same_seed,
                    args=(job,),
                    help="The same text, photo, settings and seed, as a new job",
                )
                has_segments = bool((job.get("output") or {}).get("segments"))
                if has_segments or (job.get("input") or {}).get("draft"):
                    st.button(
                        "Retake / finalize…",
                        key=f"open-{job['id']}",
                        icon=":material/restart_alt:",
                        on_click=_open_in_jobs,
                        args=(job["id"],),
                        help="Opens it on the Jobs page: retake any segment, or finalize a draft",
                    )
                with st.popover("Delete", icon=":material/delete:", key=f"delpop-{job['id']}"):
                    st.write(delete_question(trash))
                    st.button(
                        "Move to trash" if (trash or {}).get("trash_days") else "Delete for good",
                        key=f"delete-{job['id']}",
                        type="primary",
                        on_click=_delete,
                        args=(job["id"],),
                    )
                st.caption(ui.when(job.get("completed_at")))


if jump := st.session_state.pop("gallery_jump", None):
    ui.focus(jump)

st.title("Gallery")
if "gallery_error" in st.session_state:
    ui.show_error(st.session_state.pop("gallery_error"))
if deleted := st.session_state.pop("gallery_deleted", None):
    st.toast(f"Deleted {deleted}: restore it under Recently deleted", icon=":material/delete:")
if restored := st.session_state.pop("gallery_restored", None):
    st.toast(f"Restored {restored}", icon=":material/restore_from_trash:")

try:
    clips = ui.client().predictions(status=["succeeded"], limit=MAX_LISTED)["results"]
except ApiError as exc:
    ui.show_error(exc, prefix="The gallery could not be loaded: ")
    st.stop()

if not clips:
    st.info("No finished clips yet.", icon=":material/video_library:")
    st.page_link(ui.PAGES["create"], label="Create one", icon=":material/movie_edit:")
    recently_deleted(read_trash())
    st.stop()

groups = version_groups(clips)
pages = (len(groups) + PER_PAGE - 1) // PER_PAGE
st.caption(
    f"{len(clips)} clip{'s' if len(clips) != 1 else ''}"
    + (f" of {len(groups)} text{'s' if len(groups) != 1 else ''}" if len(groups) != len(clips) else "")
    + (" (newest 200)" if len(clips) >= MAX_LISTED else "")
)
page = st.pagination(pages, key="gallery_page") if pages > 1 else 1
page = min(page, pages)  # after deletes the remembered page may be gone
shown = groups[(page - 1) * PER_PAGE : page * PER_PAGE]
columns = st.columns(2)
trash_now = read_trash()
for i, versions in enumerate(shown):
    with columns[i % 2]:
        tile(versions, trash_now)
recently_deleted(trash_now)
