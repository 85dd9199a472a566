"""Create: what the avatar says, who it is, and how the clip is made; submitted over HTTP, then the job opens."""

from __future__ import annotations

import random

import streamlit as st

from frontend import ui
from frontend.client import ApiError, Upload
from ltx2.domain.policy import draft_size

# Pure Python (no torch): the same estimate and the same split the server plans with.
from ltx2.domain.prompts import estimate_speech_seconds, plan_clip
from ltx2.domain.split import split_script

MODES = {
    "photo": "Reference photo",
    "random": "Random avatar from a description",
    "profile": "Trained face profile",
    "voice": "My own voice recording",
}
SIZES = {
    "Landscape 768×512": (768, 512),
    "Portrait 512×768": (512, 768),
    "Square 512×512": (512, 512),
    "Wide HD 1024×576": (1024, 576),
    "Small 384×256 (quick look)": (384, 256),
    "Thumbnail 128×128 (smoke test)": (128, 128),
}
QUALITY = {
    "draft": "Fast: distilled, 8+3 steps",
    "final": "Final: two-stage guided, slower, cleaner",
}
CAPTIONS = {"srt": "SRT", "vtt": "WebVTT"}
SEGMENTS_LISTED_OPEN = 12  # longer plans scroll in a box of their own
FPS = 24.0
VOICE_PLACEHOLDER_TEXT = "(speaking along with the recording)"  # the API needs a line even when audio speaks
PERSIST = {"persist_state": "session"}  # the form survives a trip to another page


def _remember_upload(widget_key: str, store_key: str) -> None:
    """Keep an upload's bytes in the session: the uploader itself forgets them when the page is left."""
    value = st.session_state.get(widget_key)
    st.session_state[store_key] = (
        {"name": value.name, "data": value.getvalue(), "mime": value.type or "application/octet-stream"}
        if value is not None else None
    )


def _upload_picker(label: str, types: list[str], widget_key: str, store_key: str, preview) -> dict | None:
    st.file_uploader(label, type=types, key=widget_key, on_change=_remember_upload, args=(widget_key, store_key))
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
    return bool(any(state.get(f"create_caption_{fmt}") for fmt in CAPTIONS) or state.get("create_burn")
                or float(state.get("create_crossfade") or 0.0) > 0)


def _segment_list(segments) -> None:
    box = st.container(height=420 if len(segments) > SEGMENTS_LISTED_OPEN else "content", border=True,
                       key="create_plan")
    for seg in segments:
        box.markdown(f"**{seg.index + 1}** · about {seg.speech_seconds:.1f} s — {ui.md_escape(seg.text)}")


@st.fragment
def text_and_estimate(mode: str) -> None:
    """Only this part reruns when the text changes (Ctrl+Enter or leaving the box), so the estimate and the plan
    follow it without redrawing the page."""
    voice = mode == "voice"
    label = "Transcript of your recording (optional)" if voice else "What the avatar says"
    st.text_area(label, key="create_text", max_chars=5000, height=140, **PERSIST,
                 placeholder="Hello there, welcome to the studio.",
                 help="A line, or a whole script: longer texts are split into segments at sentence ends and made "
                      "into one video. A blank line always starts a new segment.")
    text = st.session_state.get("create_text") or ""
    lim = ui.limits()
    if voice:
        st.caption(f"The video is as long as your recording; one longer than {lim['max_seconds']:g} s is made in "
                   f"segments of at most {lim['segment_seconds']:g} s.")
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
        st.caption(f":material/timer: about **{plan.speech_seconds:.1f} s** of speech → a {plan.clip_seconds:.1f} s "
                   f"clip ({plan.num_frames} frames), playing **{plan.clip_seconds / speed:.1f} s** at {speed:g}× "
                   f"speed (one clip holds at most {lim['max_seconds']:g} s)")
        return
    try:
        script = split_script(text, max_clip_seconds=lim["segment_seconds"], words_per_minute=wpm,
                              max_script_seconds=lim["max_script_seconds"], max_segments=lim["max_segments"])
    except ValueError as exc:  # nothing to say, or over the server's maximum
        st.error(str(exc), icon=":material/timer_off:")
        return
    n = len(script.segments)
    if n == 1:
        st.caption(f":material/timer: about **{script.speech_seconds:.1f} s** of speech in one segment, playing "
                   f"about **{script.speech_seconds / speed:.1f} s** at {speed:g}× speed")
        return
    st.markdown(f":material/splitscreen: **{n} segments** · about **{script.speech_seconds:.0f} s** of speech, "
                f"made one after another and stitched into one video of about "
                f"**{script.speech_seconds / speed:.0f} s** at {speed:g}× speed")
    st.caption(f"Each segment is at most {script.max_clip_seconds:g} s of speech (one clip); a blank line starts a "
               "new one. Any segment can be retaken afterwards without making the others again.")
    _segment_list(script.segments)


def _photo_preview(stored: dict) -> None:
    st.image(stored["data"], caption=stored["name"], width=220)


def _audio_preview(stored: dict) -> None:
    st.audio(stored["data"], format=stored["mime"])


def _randomise_seed() -> None:
    st.session_state["create_seed"] = random.randint(0, 2**31 - 1)


st.title("Create a talking avatar")
mode = st.radio("Who speaks", list(MODES), format_func=MODES.get, key="create_mode", horizontal=True, **PERSIST)
text_and_estimate(mode)

inp: dict = {}
photo = audio = None
profiles: list[dict] = []
if mode == "photo":
    photo = _upload_picker("Reference photo (frame 0 of the clip)", ["png", "jpg", "jpeg", "webp"],
                           "create_photo_upload", "create_photo", _photo_preview)
    left, right = st.columns(2)
    inp["image_strength"] = left.slider(
        "Photo strength", 0.0, 1.0, 1.0, 0.05, key="create_strength", **PERSIST,
        help="How strongly frame 0 follows the photo (1 = exactly the photo; below ~0.5 it drifts away).")
    inp["keyframe_anchors"] = right.number_input(
        "Face anchors", 0, 8, 0, key="create_anchors", **PERSIST,
        help="The photo again at this many later keyframes, holding the face steady in longer clips.")
elif mode == "random":
    inp["avatar_description"] = st.text_area(
        "Describe the avatar", key="create_description", max_chars=1000, **PERSIST,
        placeholder="a young woman with curly red hair and a green sweater, in a bright office") or None
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
        right.caption(f"Trigger word `{profile['trigger']}` · {profile['photos']} photos · {profile['steps']} steps")
        inp["profile"] = chosen
        inp["profile_strength"] = right.slider("Profile strength", 0.0, 2.0, 1.0, 0.05, key="create_profile_strength",
                                               **PERSIST)
    else:
        st.info("There are no face profiles yet. Train one from 3–10 photos first.", icon=":material/info:")
        st.page_link(ui.PAGES["profiles"], label="Go to Face profiles", icon=":material/arrow_forward:")
else:  # voice
    st.audio_input("Record your voice", key="create_voice_record", on_change=_remember_upload,
                   args=("create_voice_record", "create_voice"))
    audio = _upload_picker("…or upload a recording (WAV, MP3, M4A, OGG, FLAC)",
                           ["wav", "mp3", "m4a", "ogg", "flac", "webm"], "create_voice_upload", "create_voice",
                           _audio_preview)
    with st.expander("Reference photo (optional)"):
        photo = _upload_picker("Reference photo", ["png", "jpg", "jpeg", "webp"], "create_voice_photo_upload",
                               "create_voice_photo", _photo_preview)

st.divider()
c1, c2, c3, c4 = st.columns([3, 3, 2, 3])
speed = c1.slider("Playback speed", 0.5, 2.0, 1.0, 0.05, key="create_speed", format="%.2f×", **PERSIST,
                  help="Applied when the MP4 is written: every frame kept, the voice keeps its pitch.")
size = c2.selectbox("Size", list(SIZES), key="create_size", **PERSIST)
seed_col, dice_col = c3.columns([3, 1], vertical_alignment="bottom")
seed = seed_col.number_input("Seed", 0, 2**31 - 1, 42, key="create_seed", **PERSIST,
                             help="The same seed and settings give the same clip.")
dice_col.button("", icon=":material/casino:", key="create_seed_random", on_click=_randomise_seed,
                help="A random seed")
draft_on = bool(st.session_state.get("create_draft"))  # the toggle below, as last set
quality = c4.radio("Quality", list(QUALITY), format_func=QUALITY.get, key="create_quality", **PERSIST,
                   disabled=draft_on, help="A draft is always made fast, at half size; you pick the quality when "
                                           "you finalize it." if draft_on else None)

s1, s2 = st.columns([6, 5])
with s1:
    st.markdown("**Captions**")
    with st.container(horizontal=True):
        captions = [fmt for fmt, name in CAPTIONS.items()
                    if st.checkbox(f"{name} file", key=f"create_caption_{fmt}", **PERSIST,
                                   help=f"A {name} caption file beside the video, timed to each segment.")]
        burn = st.checkbox("Burn into the picture", key="create_burn", **PERSIST,
                           help="The words drawn at the bottom of the video itself (with or without a file).")
crossfade = s2.slider("Crossfade between segments", 0.0, 1.0, 0.0, 0.05, key="create_crossfade", format="%.2f s",
                      **PERSIST, help="Blend each segment into the next over this long (0 = a straight cut).")
draft = st.toggle("Draft: quick half-size preview, finalize later", key="create_draft", **PERSIST,
                  help="Made fast (distilled) at half the width and height. Look at it, retake the segments you "
                       "do not like, then Finalize it on the Jobs page: the same seed and segments at full size.")
if draft:
    st.caption("The draft is made at {}×{}; finalizing makes it at full size.".format(*draft_size(*SIZES[size])))

if st.button("Generate", type="primary", icon=":material/movie:", key="create_submit"):
    text = (st.session_state.get("create_text") or "").strip()
    problem = None
    if mode != "voice" and not text:
        problem = "Type what the avatar should say."
    elif mode == "photo" and not photo:
        problem = "Upload a reference photo, or choose “Random avatar from a description”."
    elif mode == "profile" and "profile" not in inp:
        problem = "Pick a face profile (train one on the Face profiles page first)."
    elif mode == "voice" and not audio:
        problem = "Record or upload your voice first."
    if problem:
        st.error(problem, icon=":material/edit_note:")
    else:
        width, height = SIZES[size]
        inp.update(text=text or VOICE_PLACEHOLDER_TEXT, speed=round(float(speed), 2), seed=int(seed),
                   width=width, height=height,
                   mode="distilled" if quality == "draft" or draft else "two-stage",
                   captions=captions, burn_captions=bool(burn), crossfade=round(float(crossfade), 2),
                   draft=bool(draft))
        c = ui.client()
        try:
            with st.spinner("Sending to the server…"):
                if photo:
                    inp["image"] = c.upload(Upload(photo["name"], photo["data"], photo["mime"]))["id"]
                if mode == "voice":
                    inp["audio"] = c.upload(Upload(audio["name"], audio["data"], audio["mime"]))["id"]
                job = c.create_prediction({k: v for k, v in inp.items() if v is not None})
        except ApiError as exc:
            ui.show_error(exc, prefix="The clip was not queued: ")
        else:
            ui.focus(job["id"])
