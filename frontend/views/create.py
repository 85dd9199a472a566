"""Create: what the avatar says, who it is, and how the clip is made; submitted over HTTP, then the job opens."""

from __future__ import annotations

import random

import streamlit as st

from frontend import config, ui, uploads
from frontend.client import ApiError, Upload
from ltx2.domain.policy import draft_size

# Pure Python (no torch): the same estimate, prompt and split the server plans with.
from ltx2.domain.prompts import build_prompt, estimate_speech_seconds, plan_clip
from ltx2.domain.split import split_script

MODES = {  # the first works with no upload at all, so a first clip is one click
    "random": "Random avatar from a description",
    "photo": "Reference photo",
    "profile": "Trained face profile",
    "voice": "My own voice recording",
}
DEFAULT_TEXT, DEFAULT_DESCRIPTION = config.DEFAULT_TEXT, config.DEFAULT_DESCRIPTION
SIZES = {
    "Landscape 768×512": (768, 512),
    "Portrait 512×768": (512, 768),
    "Square 512×512": (512, 512),
    "Wide HD 1024×576": (1024, 576),
    "Small 384×256 (quick look)": (384, 256),
    "Thumbnail 128×128 (smoke test)": (128, 128),
}
DEFAULT_SIZE, TINY_SIZE = "Landscape 768×512", "Thumbnail 128×128 (smoke test)"
SEED_MAX = 2**31 - 1
ANCHORS_MAX = 8
QUALITY = {
    "draft": "Fast: distilled, 8+3 steps",
    "final": "Final: two-stage guided, slower, cleaner",
}
CAPTIONS = {"srt": "SRT", "vtt": "WebVTT"}
SEGMENTS_LISTED_OPEN = 12  # longer plans scroll in a box of their own
FPS = 24.0
VOICE_PLACEHOLDER_TEXT = "(speaking along with the recording)"  # the API needs a line even when audio speaks
PERSIST = {"persist_state": "session"}  # the form survives a trip to another page


CHECKS = {"image": uploads.image_problem, "audio": uploads.audio_problem}


def _remember_upload(widget_key: str, store_key: str, kind: str) -> None:
    """Check an upload the moment it arrives and keep its bytes in the session (the uploader itself forgets
    them when the page is left). A file that is not what it claims is not kept; the field says why."""
    value = st.session_state.get(widget_key)
    st.session_state[f"{store_key}_problem"] = None
    if value is None:
        st.session_state[store_key] = None
        return
    data = value.getvalue()
    problem, about = CHECKS[kind](data)
    if problem:
        st.session_state[store_key] = None
        st.session_state[f"{store_key}_problem"] = f"**{ui.md_escape(value.name)}** was not taken: {problem}."
        return
    st.session_state[store_key] = {
        "name": value.name,
        "data": data,
        "about": about,
        "mime": value.type or "application/octet-stream",
    }


def _field_problem(store_key: str) -> None:
    if problem := st.session_state.get(f"{store_key}_problem"):
        st.error(problem, icon=":material/broken_image:")


def _upload_picker(
    label: str, types: list[str], widget_key: str, store_key: str, preview, kind: str = "image"
) -> dict | None:
    st.file_uploader(label, type=types, key=widget_key, on_change=_remember_upload, args=(widget_key, store_key, kind))
    _field_problem(store_key)
    stored = st.session_state.get(store_key)
    if stored:
        preview(stored)
        if st.session_state.get(widget_key) is None:  # kept from an earlier visit: offer to drop it
            if st.button(f"Remove {stored['name']}", key=f"{store_key}-remove", icon=":material/close:"):
                st.session_state[store_key] = None
                st.rerun()
    return stored


def script_options_on() -> bool:
    """Captions, burned-in captions or a crossfade: with any of them the server makes even a short text a script
    (split at the segment length), as it does any text longer than one clip."""
    state = st.session_state
    return bool(
        any(state.get(f"create_caption_{fmt}") for fmt in CAPTIONS)
        or state.get("create_burn")
        or float(state.get("create_crossfade") or 0.0) > 0
    )


def _segment_list(segments) -> None:
    box = st.container(
        height=420 if len(segments) > SEGMENTS_LISTED_OPEN else "content", border=True, key="create_plan"
    )
    for seg in segments:
        box.markdown(f"**{seg.index + 1}** · about {seg.speech_seconds:.1f} s — {ui.md_escape(seg.text)}")


@st.fragment
def text_and_estimate(mode: str) -> None:
    """Only this part reruns when the text changes (Ctrl+Enter or leaving the box), so the estimate, the plan
    and the prompt preview follow it without redrawing the page."""
    voice = mode == "voice"
    label = "Transcript of your recording (optional)" if voice else "What the avatar says"
    text = st.session_state.get("create_text") or ""
    st.text_area(
        label,
        key="create_text",
        max_chars=5000,
        height=text_height(text),
        **PERSIST,
        help="A line, or a whole script: longer texts are split into segments at sentence ends and made "
        "into one video. A blank line always starts a new segment.",
    )
    estimate(mode, st.session_state.get("create_text") or "")
    if not voice:
        prompt_preview(mode, st.session_state.get("create_text") or "")


def estimate(mode: str, text: str) -> None:
    lim = ui.limits()
    if mode == "voice":
        st.caption(
            f"The video is as long as your recording; one longer than {lim['max_seconds']:g} s "
            f"(one clip) is made in segments of at most {lim['segment_seconds']:g} s each."
        )
        return
    if not text.strip():
        st.caption("Type the line or paste the script; its spoken length appears here.")
        return
    speed = float(st.session_state.get("create_speed", 1.0))
    wpm = lim["words_per_minute"]
    if estimate_speech_seconds(text, wpm) <= lim["max_seconds"] and not script_options_on():
        try:
            plan = plan_clip(text, fps=FPS, max_seconds=lim["max_seconds"], words_per_minute=wpm)
        except ValueError as exc:
            st.error(str(exc), icon=":material/timer_off:")
            return
        st.caption(
            f":material/timer: about **{plan.speech_seconds:.1f} s** of speech → a {plan.clip_seconds:.1f} s "
            f"clip ({plan.num_frames} frames), playing **{plan.clip_seconds / speed:.1f} s** at {speed:g}× "
            f"speed"
        )
        st.caption(limits_line(lim))
        return
    try:
        script = split_script(
            text,
            max_clip_seconds=lim["segment_seconds"],
            words_per_minute=wpm,
            max_script_seconds=lim["max_script_seconds"],
            max_segments=lim["max_segments"],
        )
    except ValueError as exc:  # nothing to say, or over the server's maximum
        st.error(str(exc), icon=":material/timer_off:")
        return
    n = len(script.segments)
    if n == 1:
        st.caption(
            f":material/timer: about **{script.speech_seconds:.1f} s** of speech in one segment, playing "
            f"about **{script.speech_seconds / speed:.1f} s** at {speed:g}× speed"
        )
        return
    st.markdown(
        f":material/splitscreen: **{n} segments** · about **{script.speech_seconds:.0f} s** of speech, "
        f"made one after another and stitched into one video of about "
        f"**{script.speech_seconds / speed:.0f} s** at {speed:g}× speed"
    )
    st.caption(
        f"{limits_line(lim)} A blank line starts a new segment. Any segment can be retaken afterwards "
        "without making the others again."
    )
    _segment_list(script.segments)


def limits_line(lim: dict) -> str:
    """The two lengths said together, in the same words everywhere, so they cannot read as a contradiction."""
    return (
        f"Up to {lim['max_seconds']:g} s of speech is made as one clip; a longer text (or one with captions "
        f"or a crossfade) becomes segments of at most {lim['segment_seconds']:g} s each, stitched into one "
        "video."
    )


def text_height(text: str) -> int:
    """The script box grows with its text (about 100 characters a line), from 4 lines up to 20."""
    lines = sum(max(1, -(-len(line) // 100)) for line in text.split("\n"))
    return min(max(lines, 4), 20) * 24 + 20


def _photo_preview(stored: dict) -> None:
    st.image(stored["data"], caption=f"{stored['name']} · {stored.get('about', '')}", width=220)


def _audio_preview(stored: dict) -> None:
    st.audio(stored["data"], format=stored["mime"])


class _Refused(Exception):
    """The server turned an upload away; its reason is now shown under that file's field."""


def _photo_key(mode: str) -> str:
    return "create_voice_photo" if mode == "voice" else "create_photo"


def _send(c, file: dict, store_key: str) -> str:
    """Upload one file; a 4xx (not a picture the server takes, too small…) goes under its field, not on top."""
    try:
        return c.upload(Upload(file["name"], file["data"], file["mime"]))["id"]
    except ApiError as exc:
        if exc.status is None or exc.status >= 500:
            raise
        st.session_state[store_key] = None
        st.session_state[f"{store_key}_problem"] = f"**{ui.md_escape(file['name'])}** was refused by the server: {exc}"
        raise _Refused from exc


def _photo_url() -> str:
    return (st.session_state.get("create_photo_url") or "").strip()


def _randomise_seed() -> None:
    st.session_state["create_seed"] = random.randint(0, 2**31 - 1)


def _size_chosen() -> None:
    st.session_state["create_size_chosen"] = True


def _tiny_loaded() -> bool:
    state = st.session_state.get("server_state") or {}
    return "error" not in state and bool((ui.loaded_model(state) or {}).get("tiny"))


def prompt_preview(mode: str, text: str) -> None:
    """The prompt the server builds from these inputs (the first segment's, for a script). The description,
    profile and photo are read from the session: they are drawn below, after this fragment."""
    state = st.session_state
    description = (state.get("create_description") or "").strip() or None if mode == "random" else None
    trigger = state.get("create_trigger") if mode == "profile" else None
    has_photo = mode == "profile" or (mode == "photo" and bool(state.get("create_photo") or _photo_url()))
    if not text.strip():
        return
    lim = ui.limits()
    first = text
    if estimate_speech_seconds(text, lim["words_per_minute"]) > lim["max_seconds"]:
        try:
            first = (
                split_script(
                    text,
                    max_clip_seconds=lim["segment_seconds"],
                    words_per_minute=lim["words_per_minute"],
                    max_script_seconds=lim["max_script_seconds"],
                    max_segments=lim["max_segments"],
                )
                .segments[0]
                .text
            )
        except ValueError:
            return  # the estimate above already says why
    try:
        prompt = build_prompt(
            first, avatar_description=description, has_reference_image=has_photo, trigger_token=trigger
        )
    except ValueError:
        return
    with st.expander("Prompt preview: what the model is asked", icon=":material/description:", expanded=bool(trigger)):
        shown = ui.md_escape(prompt)
        if trigger:
            shown = shown.replace(trigger, f"**{trigger}**", 1)
        st.markdown(shown)
        if first != text:
            st.caption("This is the first segment's prompt; every segment gets its own words the same way.")


for key, value in (
    ("create_text", DEFAULT_TEXT),
    ("create_description", DEFAULT_DESCRIPTION),
    ("create_seed", 42),
    ("create_anchors", 0),
):
    st.session_state.setdefault(key, value)
tiny = _tiny_loaded()
if not st.session_state.get("create_size_chosen"):  # follow the server until the person picks a size
    st.session_state["create_size"] = TINY_SIZE if tiny else DEFAULT_SIZE

st.title("Create a talking avatar")
mode = st.radio("Who speaks", list(MODES), format_func=MODES.get, key="create_mode", horizontal=True, **PERSIST)
text_and_estimate(mode)

inp: dict = {}
photo = audio = None
numbers_ok = True
profiles: list[dict] = []
if mode == "photo":
    photo = _upload_picker(
        "Reference photo (frame 0 of the clip)",
        ["png", "jpg", "jpeg", "webp"],
        "create_photo_upload",
        "create_photo",
        _photo_preview,
    )
    if not photo:  # a pasted link instead: the server fetches it (allow-listed hosts only) and checks the picture
        st.text_input(
            "…or paste an image URL",
            key="create_photo_url",
            placeholder="https://example.com/me.png",
            **PERSIST,
            help="An http(s) link to a PNG, JPEG or WebP picture. The server downloads it through its guarded "
            "fetcher: addresses on this machine or a private network need AVATAR_FETCH_ALLOW.",
        )
        _field_problem("create_photo_url")
    left, right = st.columns(2)
    inp["image_strength"] = left.slider(
        "Photo strength",
        0.0,
        1.0,
        1.0,
        0.05,
        key="create_strength",
        **PERSIST,
        help="How strongly frame 0 follows the photo (1 = exactly the photo; below ~0.5 it drifts away).",
    )
    inp["keyframe_anchors"], ok = ui.bounded_number(
        right,
        "Face anchors",
        0,
        ANCHORS_MAX,
        "create_anchors",
        **PERSIST,
        help="The photo again at this many later keyframes, holding the face steady in longer clips.",
    )
    numbers_ok &= ok
elif mode == "random":
    inp["avatar_description"] = (
        st.text_area(
            "Describe the avatar",
            key="create_description",
            max_chars=1000,
            height=80,
            **PERSIST,
            help="Who appears: age, hair, clothes, place. Edit it, or keep it for a first try.",
        )
        or ""
    ).strip() or None
elif mode == "profile":
    try:
        profiles = ui.client().profiles()
    except ApiError as exc:
        ui.show_error(exc, prefix="Face profiles could not be listed: ")
    if profiles:
        names = [p["name"] for p in profiles]
        chosen = st.selectbox("Face profile", names, key="create_profile", **PERSIST)
        profile = next(p for p in profiles if p["name"] == chosen)
        left, right = st.columns([1, 3])
        try:
            left.image(ui.profile_photo(profile), width=140)
        except ApiError:
            left.caption("(photo unavailable)")
        trigger = profile["trigger"]
        if st.session_state.get("create_trigger") != trigger:  # the preview above was drawn without it
            st.session_state["create_trigger"] = trigger
            st.rerun()
        right.caption(f"Trigger word `{trigger}` · {profile['photos']} photos · {profile['steps']} steps")
        right.caption(
            f":material/auto_awesome: You do not need to type `{trigger}`: it is added to the prompt for "
            "you (see the prompt preview)."
        )
        inp["profile"] = chosen
        inp["profile_strength"] = right.slider(
            "Profile strength", 0.0, 2.0, 1.0, 0.05, key="create_profile_strength", **PERSIST
        )
    else:
        st.info("There are no face profiles yet. Train one from 3–10 photos first.", icon=":material/info:")
        st.page_link(ui.PAGES["profiles"], label="Go to Face profiles", icon=":material/arrow_forward:")
else:  # voice
    st.audio_input(
        "Record your voice",
        key="create_voice_record",
        on_change=_remember_upload,
        args=("create_voice_record", "create_voice", "audio"),
    )
    audio = _upload_picker(
        "…or upload a recording (WAV, MP3, M4A, OGG, FLAC)",
        ["wav", "mp3", "m4a", "ogg", "flac", "webm"],
        "create_voice_upload",
        "create_voice",
        _audio_preview,
        kind="audio",
    )
    # Open while it holds a photo or a message about one, so neither is hidden after the upload's rerun.
    with st.expander(
        "Reference photo (optional)",
        expanded=bool(st.session_state.get("create_voice_photo") or st.session_state.get("create_voice_photo_problem")),
    ):
        photo = _upload_picker(
            "Reference photo",
            ["png", "jpg", "jpeg", "webp"],
            "create_voice_photo_upload",
            "create_voice_photo",
            _photo_preview,
        )

st.divider()
c1, c2, c3, c4 = st.columns([3, 3, 2, 3])
speed = c1.slider(
    "Playback speed",
    0.5,
    2.0,
    1.0,
    0.05,
    key="create_speed",
    format="%.2f×",
    **PERSIST,
    help="Applied when the MP4 is written: every frame kept, the voice keeps its pitch.",
)
size = c2.selectbox("Size", list(SIZES), key="create_size", on_change=_size_chosen, **PERSIST)
if tiny and size == TINY_SIZE:
    c2.caption(
        ":material/science: The tiny test checkpoint is loaded, so the size starts small and a clip takes seconds."
    )
seed_col, dice_col = c3.columns([3, 1], vertical_alignment="top")
seed, ok = ui.bounded_number(
    seed_col, "Seed", 0, SEED_MAX, "create_seed", **PERSIST, help="The same seed and settings give the same clip."
)
numbers_ok &= ok
dice_col.markdown("<div style='height: 1.75rem'></div>", unsafe_allow_html=True)
dice_col.button("", icon=":material/casino:", key="create_seed_random", on_click=_randomise_seed, help="A random seed")
draft_on = bool(st.session_state.get("create_draft"))  # the toggle below, as last set
quality = c4.radio(
    "Quality",
    list(QUALITY),
    format_func=QUALITY.get,
    key="create_quality",
    **PERSIST,
    disabled=draft_on,
    help="A draft is always made fast, at half size; you pick the quality when you finalize it." if draft_on else None,
)

s1, s2 = st.columns([6, 5])
with s1:
    st.markdown("**Captions**")
    with st.container(horizontal=True):
        captions = [
            fmt
            for fmt, name in CAPTIONS.items()
            if st.checkbox(
                f"{name} file",
                key=f"create_caption_{fmt}",
                **PERSIST,
                help=f"A {name} caption file beside the video, timed to each segment.",
            )
        ]
        burn = st.checkbox(
            "Burn into the picture",
            key="create_burn",
            **PERSIST,
            help="The words drawn at the bottom of the video itself (with or without a file).",
        )
crossfade = s2.slider(
    "Crossfade between segments",
    0.0,
    1.0,
    0.0,
    0.05,
    key="create_crossfade",
    format="%.2f s",
    **PERSIST,
    help="Blend each segment into the next over this long (0 = a straight cut).",
)
draft = st.toggle(
    "Draft: quick half-size preview, finalize later",
    key="create_draft",
    **PERSIST,
    help="Made fast (distilled) at half the width and height. Look at it, retake the segments you "
    "do not like, then Finalize it on the Jobs page: the same seed and segments at full size.",
)
if draft:
    st.caption("The draft is made at {}×{}; finalizing makes it at full size.".format(*draft_size(*SIZES[size])))

if st.button("Generate", type="primary", icon=":material/movie:", key="create_submit"):
    text = (st.session_state.get("create_text") or "").strip()
    if mode == "voice" and text == DEFAULT_TEXT:
        text = ""  # the first-clip line left in the box is not a transcript of someone's recording
    problem = None
    if not numbers_ok:
        problem = "A number above is out of its range (see the message under it)."
    elif mode != "voice" and not text:
        problem = "Type what the avatar should say."
    elif mode == "photo" and not photo and not _photo_url():
        problem = "Upload a reference photo or paste its URL, or choose “Random avatar from a description”."
    elif mode == "profile" and "profile" not in inp:
        problem = "Pick a face profile (train one on the Face profiles page first)."
    elif mode == "voice" and not audio:
        problem = "Record or upload your voice first."
    if problem:
        st.error(problem, icon=":material/edit_note:")
    else:
        width, height = SIZES[size]
        inp.update(
            text=text or VOICE_PLACEHOLDER_TEXT,
            speed=round(float(speed), 2),
            seed=int(seed),
            width=width,
            height=height,
            mode="distilled" if quality == "draft" or draft else "two-stage",
            captions=captions,
            burn_captions=bool(burn),
            crossfade=round(float(crossfade), 2),
            draft=bool(draft),
        )
        c = ui.client()
        url = _photo_url() if mode == "photo" and not photo else ""
        try:
            with st.spinner("Sending to the server…"):
                for file, field, store_key in ((photo, "image", _photo_key(mode)), (audio, "audio", "create_voice")):
                    if file:
                        inp[field] = _send(c, file, store_key)
                if url:
                    inp["image"] = url
                st.session_state.pop("create_photo_url_problem", None)
                job = c.create_prediction({k: v for k, v in inp.items() if v is not None})
        except _Refused:
            st.rerun()  # the field that holds the refused file says why, under itself
        except ApiError as exc:
            said = str(exc)
            if url and exc.status is not None and exc.status < 500 and said.lower().startswith("input.image: "):
                st.session_state["create_photo_url_problem"] = (
                    f"The server did not take this link: {said.split(': ', 1)[1]}"
                )
                st.rerun()  # said under the URL field
            ui.show_error(exc, prefix="The clip was not queued: ")
        else:
            ui.focus(job["id"])
