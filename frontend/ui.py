"""What every studio page shares: the API client for this session, errors in words, the server banner, media."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import streamlit as st
from pydantic import ValidationError

from frontend import config
from frontend.client import ApiClient, ApiError, AuthError, ServerUnreachable
from ltx2.domain import status
from ltx2.domain.inputs import GenerateInput
from ltx2.domain.limits import default_planning

PAGES = {
    "create": "views/create.py",
    "jobs": "views/jobs.py",
    "gallery": "views/gallery.py",
    "profiles": "views/profiles.py",
    "workspace": "views/workspace.py",
    "server": "views/server.py",
}
ACTIVE = tuple(s.value for s in status.ACTIVE)  # the server's own vocabulary, not a copy of it
TERMINAL = tuple(s.value for s in status.TERMINAL)
POLL_S = 1.0  # live views refresh this often (the worker writes progress at most twice a second)


# --- connection -----------------------------------------------------------------------------------------------


def exposed() -> bool:
    """True when the studio listens beyond this machine: then nothing is shown before a valid API key."""
    return not config.is_loopback(st.get_option("server.address"))


def api_url() -> str:
    if not exposed():  # an exposed studio must not be pointed at arbitrary hosts by whoever reaches it
        return st.session_state.get("api_url_override") or config.api_url()
    return config.api_url()


def api_key() -> str | None:
    if exposed():  # only the key this browser session proved; the studio's own key is not handed out
        return st.session_state.get("signed_in_key")
    return st.session_state.get("api_key_override") or config.api_key()


@st.cache_resource(show_spinner=False, max_entries=16)
def _client(url: str, key: str | None) -> ApiClient:
    return ApiClient(url, key)


def client() -> ApiClient:
    return _client(api_url(), api_key())


@st.cache_data(show_spinner=False, ttl=60, max_entries=16)
def _limits(url: str, key: str | None) -> dict:
    return _client(url, key).limits()


def limits() -> dict:
    """The server's planning numbers (clip and segment length, speech rate, script maximum), so the studio plans
    a script exactly as the server will; a default server's numbers (ltx2.domain.limits) while it cannot be asked.
    The studio never reads the server's AVATAR_* settings itself: it may run on another machine."""
    try:
        return _limits(api_url(), api_key())
    except ApiError:
        return default_planning()


def show_error(exc: Exception, *, prefix: str = "", list_problems: bool = True) -> None:
    """An error in plain words: unreachable server and refused key get their own hint, never a traceback."""
    text = f"{prefix}{exc}"
    banner_error = (st.session_state.get("server_state") or {}).get("error")
    if isinstance(exc, (ServerUnreachable, AuthError)) and type(exc) is type(banner_error) and exc is not banner_error:
        # The banner above already says why; once is enough.
        st.caption(f":material/cloud_off: {prefix.rstrip(': ')} (see above)." if prefix else "(see above)")
        return
    if isinstance(exc, ServerUnreachable):
        st.error(text, icon=":material/cloud_off:")
    elif isinstance(exc, AuthError):
        st.error(text, icon=":material/key_off:")
    else:
        st.error(text, icon=":material/error:")
    for problem in (getattr(exc, "problems", None) or []) if list_problems else []:
        st.markdown(f"- **{problem.get('photo', '?')}**: {problem.get('reason', '')}")


def call(fn, *args, prefix: str = "", **kwargs):
    """Run one API call; on failure show why and return None."""
    try:
        return fn(*args, **kwargs)
    except ApiError as exc:
        show_error(exc, prefix=prefix)
        return None


def server_state() -> dict:
    """/health-check (open) plus whether the key works; {'error': ApiError} when either fails."""
    c = client()
    try:
        state = c.health_check()
        c.check_key()
    except ApiError as exc:
        return {"error": exc}
    return state


def loaded_model(state: dict) -> dict | None:
    return next((w["model"] for w in state.get("workers", []) if w.get("alive") and w.get("model")), None)


def banner(state: dict) -> None:
    """Top of every page: why nothing works (server down, key refused), and the tiny checkpoint warning."""
    if "error" in state:
        show_error(state["error"])
        return
    model = loaded_model(state)
    if model and model.get("tiny"):
        st.warning(
            "**Tiny test checkpoint loaded.** The real LTX-2 pipeline runs, but motion and sound are noise "
            "(a reference photo shows at the first frame). "
            "For real videos run `avatar models download` on a GPU host: the next launch uses the verified weights.",
            icon=":material/science:",
        )
    if state.get("status") == "SETUP_FAILED":
        errors = "; ".join(w["error"] for w in state.get("workers", []) if w.get("error"))
        st.error(
            f"The worker could not load the model, so no clip can be made: {errors or 'see the server log'}.",
            icon=":material/report:",
        )
    elif not any(w.get("alive") for w in state.get("workers", [])):
        st.info(
            "No worker is running yet (it may still be loading the model). Jobs wait in the queue until one is ready.",
            icon=":material/hourglass_top:",
        )


# --- words ----------------------------------------------------------------------------------------------------

STATUS_LABEL = {
    "starting": ":material/schedule: Waiting",
    "processing": ":material/autorenew: Running",
    "succeeded": ":material/check_circle: Done",
    "failed": ":material/error: Failed",
    "canceled": ":material/block: Canceled",
}


def plain_error(job: dict) -> str:
    """A failed job's error as a person would want it explained."""
    code, error = job.get("error_code"), (job.get("error") or "no details were recorded").rstrip(".")
    if code == "invalid_input":
        return f"The server could not use this request: {error}. Change the input and create it again."
    if code == "out_of_memory":
        return f"The GPU ran out of memory: {error}. Pick a smaller size, Fast quality or a draft, and retry."
    if code == "worker_lost":
        return (
            "The worker making this stopped responding (it crashed or its machine restarted), even after one "
            "automatic retry. Retry it; if it happens again, look at the server log."
        )
    if code == "internal_error":
        return f"Something broke inside the server: {error}. Retry; if it fails again, the server log says more."
    return f"{error}."


def human_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def when(iso: str | None) -> str:
    if not iso:
        return "–"
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    ago = (datetime.now(UTC) - then).total_seconds()
    if ago < 60:
        return "just now"
    if ago < 3600:
        return f"{ago // 60:.0f} min ago"
    if ago < 86400:
        return f"{ago // 3600:.0f} h ago"
    return then.strftime("%Y-%m-%d %H:%M")


def short(text: str | None, n: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


_MARKDOWN_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>|~$:"})


def md_escape(text: str | None) -> str:
    """Someone's words shown as they are inside Markdown (no accidental bold, links, lists or math)."""
    return (text or "").translate(_MARKDOWN_SPECIAL)


def clock(seconds: float | None) -> str:
    """0:08.3 style, for positions in a video."""
    if seconds is None:
        return "–"
    minutes, rest = divmod(round(max(float(seconds), 0.0), 1), 60)
    return f"{minutes:.0f}:{rest:04.1f}"


# --- media ----------------------------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=32, max_size="512MB")
def _download(url: str, key: str | None, filename: str, sha256: str | None) -> bytes:
    # Keyed by server, file name and hash: a re-made file with the same name is fetched again.
    return _client(url, key).download(filename)


def output_bytes(filename: str, sha256: str | None = None) -> bytes:
    """A finished output's bytes, fetched over the API and served to the browser by Streamlit itself, so
    playback and downloads work through a tunnel that forwards only the studio's port, and with API keys."""
    return _download(api_url(), api_key(), filename, sha256)


@st.cache_data(show_spinner=False, max_entries=64, ttl=600)
def _profile_photo(url: str, key: str | None, name: str, created: str | None) -> bytes:
    return _client(url, key).profile_photo(name)


def profile_photo(profile: dict) -> bytes:
    return _profile_photo(api_url(), api_key(), profile["name"], profile.get("created_at"))


@st.cache_data(show_spinner=False, max_entries=64, ttl=600)
def _profile_preview(url: str, key: str | None, name: str, created: str | None) -> bytes:
    return _client(url, key).profile_preview(name)


def profile_preview(profile: dict) -> bytes:
    """The first frame of a clip made with the profile when its training ended."""
    return _profile_preview(api_url(), api_key(), profile["name"], profile.get("created_at"))


def headline(job: dict) -> str:
    """What is said: a finished script's segments (a retake's new words included), else the input text."""
    segments = (job.get("output") or {}).get("segments") or []
    return " ".join(s.get("text") or "" for s in segments) if segments else (job.get("input") or {}).get("text") or ""


def slug(text: str, words: int = 6, max_chars: int = 40) -> str:
    """hello-there-welcome-to-the: the first words of a text as a file-name part (ASCII, lower case)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    parts = re.findall(r"[a-z0-9]+", ascii_text)[:words]
    return "-".join(parts)[:max_chars].strip("-") or "clip"


def download_name(job: dict, suffix: str) -> str:
    """A download's file name from what is said, the day it was made and a short id: the same clip downloaded
    twice gets the same name, two clips of one text differ. `suffix` is e.g. '.mp4' or '.en.srt'."""
    day = (job.get("completed_at") or job.get("created_at") or "")[:10] or "undated"
    return f"{slug(headline(job))}-{day}-{job['id'][:8]}{suffix}"


FILE_KINDS = {  # output field → (button label, icon, MIME type)
    "video": ("Download MP4", ":material/download:", "video/mp4"),
    "srt": ("Download SRT captions", ":material/subtitles:", "application/x-subrip"),
    "vtt": ("Download WebVTT captions", ":material/subtitles:", "text/vtt"),
    "thumbnail": ("Download thumbnail", ":material/image:", None),
    "metadata_file": ("Download metadata", ":material/data_object:", "application/json"),
}


def produced_files(job: dict) -> list[tuple[str, str]]:
    """(kind, stored file name) for every file this job produced: the video, its captions, thumbnail, metadata."""
    out = job.get("output") or {}
    files = [("video", out["video"])] if out.get("video") else []
    files += [(fmt, name) for fmt, name in (out.get("captions") or {}).items()]
    files += [(kind, out[kind]) for kind in ("thumbnail", "metadata_file") if out.get(kind)]
    return files


def thumbnail(job: dict) -> bytes | None:
    name = (job.get("output") or {}).get("thumbnail")
    if not name:
        return None
    try:
        return output_bytes(name)
    except ApiError:
        return None


def file_downloads(job: dict, video_data: bytes | None = None) -> None:
    """One download button per produced file, each named from the text (see download_name)."""
    with st.container(horizontal=True, key=f"files-{job['id']}"):
        for kind, name in produced_files(job):
            label, icon, mime = FILE_KINDS.get(kind, (f"Download {name}", ":material/download:", None))
            try:
                data = video_data if kind == "video" and video_data is not None else output_bytes(name)
            except ApiError as exc:
                show_error(exc, prefix=f"{label[9:].capitalize()} could not be loaded: ")
                continue
            suffix = "".join(Path(name).suffixes[-1:])
            key = f"dl-{job['id']}" if kind == "video" else f"dl-{kind}-{job['id']}"
            st.download_button(
                label, data=data, file_name=download_name(job, suffix), mime=mime, key=key, icon=icon, on_click="ignore"
            )


def video_player(job: dict, width: int | str = "stretch") -> None:
    """The clip playable in the page plus a download for each file the job produced."""
    out = job.get("output") or {}
    video = out.get("video")
    if not video:
        return
    try:
        data = output_bytes(video, out.get("sha256"))
    except ApiError as exc:
        show_error(exc, prefix="The video could not be loaded: ")
        return
    st.video(data, format="video/mp4", width=width)
    file_downloads(job, data)


def bounded_number(
    where, label: str, low: float, high: float, key: str, *, default: float | None = None, step: float = 1, **kwargs
) -> tuple[float, bool]:
    """A number whose range is checked here rather than by the widget, so a value out of it is explained in
    words under the field (the browser's own check only draws a red outline). Returns (value, in range)."""
    if default is not None:
        st.session_state.setdefault(key, default)
    value = where.number_input(label, key=key, step=step, **kwargs)
    whole = isinstance(step, int)
    if value is None or not low <= value <= high:
        span = f"{low:,} to {high:,}" if whole else f"{low:g} to {high:g}"
        where.markdown(f":red[:material/error: {label} must be {'a whole number ' if whole else ''}from {span}.]")
        return (low if value is None else value), False
    return (int(value) if whole else float(value)), True


def focus(job_id: str) -> None:
    """Open the Jobs page on this job."""
    st.session_state["focus_job"] = job_id
    st.switch_page(PAGES["jobs"])


def kv_table(rows: dict) -> None:
    """A two-column table of labels and values."""
    import pandas as pd

    st.table(pd.DataFrame({"value": [str(v) for v in rows.values()]}, index=list(rows)), hide_header=True)


def job_input(job: dict) -> dict:
    """A clip's input with the server's defaults filled in: documents show the input as it was sent."""
    inp = job.get("input") or {}
    try:
        return GenerateInput.model_validate(inp).model_dump()
    except ValidationError:
        return inp
