"""The studio's pages headless (streamlit.testing AppTest) against a real `avatar serve` on the tiny checkpoint.

No client is mocked: every page talks HTTP to a LiveServer. What only a browser shows (video playback, the
download, live redraws) is in test_frontend_browser.py.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from frontend.launcher import Studio
from tests.conftest import write_tone
from tests.live_server import LiveServer, free_port
from tests.pace import scaled

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "frontend" / "app.py"
PAGES = [
    "views/create.py",
    "views/jobs.py",
    "views/gallery.py",
    "views/profiles.py",
    "views/workspace.py",
    "views/server.py",
]
SMALL = {"width": 128, "height": 128}  # the tiny checkpoint makes this in a few seconds on a CPU
# About 24 s of speech: more than one clip (20 s), so three segments of at most 15 s (the blank line forces one).
SCRIPT = (
    "Welcome to the studio tour. Today we look at how a long script becomes one video. The text is cut at "
    "sentence ends, so every part stays natural. Each part is one clip that fits the model.\n\n"
    "This paragraph always starts a new segment, because a blank line comes before it. Thanks for watching."
)
SCRIPT_SEGMENTS = [
    "Welcome to the studio tour. Today we look at how a long script becomes one video. The text is cut at "
    "sentence ends, so every part stays natural.",
    "Each part is one clip that fits the model.",
    "This paragraph always starts a new segment, because a blank line comes before it. Thanks for watching.",
]


def png(array=None, size=(512, 512), color=(200, 30, 30)) -> bytes:
    image = Image.fromarray(array) if array is not None else Image.new("RGB", size, color)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def astronaut_png(variant: int = 0) -> bytes:
    from skimage import data

    image = Image.fromarray(data.astronaut())
    if variant == 1:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    elif variant == 2:
        image = image.crop((10, 20, 490, 500))
    elif variant == 3:
        image = image.point(lambda v: int(v * 0.85))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("studio-apptest")) as live:
        yield live


@pytest.fixture
def studio_env(monkeypatch):
    """Point the studio at a URL/key and listen-address for one test; restores Streamlit's option after."""
    old = st_config.get_option("server.address")

    def apply(url: str, key: str | None = None, address: str = "127.0.0.1"):
        monkeypatch.setenv("AVATAR_API_URL", url)
        if key is None:
            monkeypatch.delenv("AVATAR_API_KEY", raising=False)
        else:
            monkeypatch.setenv("AVATAR_API_KEY", key)
        st_config.set_option("server.address", address)

    yield apply
    st_config.set_option("server.address", old)


@pytest.fixture
def at(server, studio_env):
    studio_env(server.url)
    return AppTest.from_file(str(APP), default_timeout=scaled(30)).run()


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def cancel_all(server: LiveServer) -> None:
    for job in server.client.get("/v1/predictions", params={"status": ["starting", "processing"]}).json()["results"]:
        server.client.post(f"/v1/predictions/{job['id']}/cancel")


@pytest.fixture(scope="module")
def finished(server) -> dict:
    """One finished clip, made through the API (the pages below show it)."""
    job = server.client.post("/v1/predictions", json={"input": {"text": "Hello there.", **SMALL}}).json()
    return server.wait_status(job["id"], ("succeeded",), timeout=120)


# --- Create ---------------------------------------------------------------------------------------------------


def test_create_estimate_validation_and_submit(at, server):
    no_exception(at)
    assert at.title[0].value == "Create a talking avatar"
    assert "Tiny test checkpoint loaded" in texts(at.warning)
    assert at.radio(key="create_mode").options == [
        "Random avatar from a description",
        "Reference photo",
        "Trained face profile",
        "My own voice recording",
    ]

    at.text_area(key="create_text").input("Hello there, welcome to the studio.").run()
    assert "of speech" in texts(at.caption)
    # One clip and one segment are said in the same sentence, with the server's numbers.
    lim = server.client.get("/v1/limits").json()
    both = (
        f"Up to {lim['max_seconds']:g} s of speech is made as one clip; a longer text (or one with captions or a "
        f"crossfade) becomes segments of at most {lim['segment_seconds']:g} s each"
    )
    assert both in texts(at.caption)
    at.slider(key="create_speed").set_value(2.0).run()
    assert "at 2× speed" in texts(at.caption)
    # Longer than one clip is no longer refused: it is planned as segments of one video.
    at.text_area(key="create_text").input(" ".join(["word"] * 80)).run()
    assert not at.error and "3 segments" in texts(at.markdown)
    assert both in texts(at.caption), "the script plan says the same two numbers"

    at.radio(key="create_mode").set_value("photo").run()
    at.text_area(key="create_text").input("Hello there.").run()
    at.button(key="create_submit").click().run()
    assert "Upload a reference photo" in texts(at.error)  # photo mode without a photo

    at.file_uploader(key="create_photo_upload").upload("me.png", astronaut_png(), "image/png").run()
    assert at.session_state["create_photo"]["name"] == "me.png"
    assert at.image[0].captions[0].startswith("me.png · 512×512"), "the reference photo is previewed, with its size"
    at.slider(key="create_strength").set_value(0.8).run()
    at.selectbox(key="create_size").select("Thumbnail 128×128 (smoke test)").run()
    at.number_input(key="create_seed").set_value(7).run()
    at.radio(key="create_quality").set_value("final").run()
    at.button(key="create_submit").click().run()
    no_exception(at)

    job_id = at.session_state["focus_job"]
    doc = server.client.get(f"/v1/predictions/{job_id}").json()
    server.client.post(f"/v1/predictions/{job_id}/cancel")
    assert doc["input"]["image"] and doc["input"]["image_strength"] == 0.8
    assert (doc["input"]["width"], doc["input"]["height"], doc["input"]["seed"]) == (128, 128, 7)
    assert (doc["input"]["speed"], doc["input"]["mode"]) == (2.0, "two-stage")
    assert at.title[0].value == "Jobs", "submitting opens the job"


def test_create_modes_and_state_across_pages(at, server):
    at.radio(key="create_mode").set_value("random").run()
    at.text_area(key="create_text").input("Good morning.").run()
    at.text_area(key="create_description").input("an old man with a grey beard").run()

    # The form outlives a trip to another page.
    at.switch_page("views/server.py").run()
    at.switch_page("views/create.py").run()
    assert at.text_area(key="create_text").value == "Good morning."
    assert at.radio(key="create_mode").value == "random"

    at.selectbox(key="create_size").select("Thumbnail 128×128 (smoke test)").run()
    at.button(key="create_submit").click().run()
    doc = server.client.get(f"/v1/predictions/{at.session_state['focus_job']}").json()
    assert (
        doc["input"]["avatar_description"] == "an old man with a grey beard" and "image" not in doc["input"]
    )  # input as sent

    at.switch_page("views/create.py").run()
    at.radio(key="create_mode").set_value("profile").run()
    assert "no face profiles yet" in texts(at.info)

    at.radio(key="create_mode").set_value("voice").run()
    at.button(key="create_submit").click().run()
    assert "Record or upload your voice" in texts(at.error)
    wav = write_tone(Path(server.root) / "voice.wav", 1.0).read_bytes()
    at.file_uploader(key="create_voice_upload").upload("voice.wav", wav, "audio/wav").run()
    at.button(key="create_submit").click().run()
    no_exception(at)
    doc = server.client.get(f"/v1/predictions/{at.session_state['focus_job']}").json()
    assert doc["input"]["audio"]
    cancel_all(server)


def test_create_long_script_plan_and_submit(at, server, monkeypatch):
    at.radio(key="create_mode").set_value("random").run()
    at.text_area(key="create_text").input(SCRIPT).run()
    no_exception(at)
    assert not at.error
    shown = texts(at.markdown)
    assert "3 segments" in shown, shown
    for number, words in enumerate(SCRIPT_SEGMENTS, 1):
        assert f"**{number}** · about" in shown and words in shown, (number, shown)

    # What cannot be made is said before anything is sent.
    at.text_area(key="create_text").input("... !!!").run()
    assert "There is no text to speak" in texts(at.error)
    # The limits are the server's (GET /v1/limits), not this process's environment.
    monkeypatch.setenv("AVATAR_MAX_SCRIPT_SECONDS", "20")
    at.text_area(key="create_text").input(SCRIPT).run()
    assert not at.error and "3 segments" in texts(at.markdown)
    at.text_area(key="create_text").input(" ".join(["w"] * 2500)).run()  # ~1000 s of speech
    assert "takes scripts of at most 600 s" in texts(at.error)
    at.text_area(key="create_text").input(SCRIPT).run()
    assert not at.error and "3 segments" in texts(at.markdown)

    at.checkbox(key="create_caption_srt").check().run()
    at.checkbox(key="create_caption_vtt").check().run()
    at.checkbox(key="create_burn").check().run()
    at.slider(key="create_crossfade").set_value(0.25).run()
    at.radio(key="create_quality").set_value("final").run()
    at.toggle(key="create_draft").set_value(True).run()
    assert at.radio(key="create_quality").disabled, "a draft is always made fast"
    at.selectbox(key="create_size").select("Thumbnail 128×128 (smoke test)").run()
    assert "The draft is made at 64×64" in texts(at.caption)
    at.button(key="create_submit").click().run()
    no_exception(at)
    assert at.title[0].value == "Jobs", "submitting opens the job"

    doc = server.client.get(f"/v1/predictions/{at.session_state['focus_job']}").json()
    server.client.post(f"/v1/predictions/{doc['id']}/cancel")
    inp = doc["input"]
    assert inp["text"] == SCRIPT, "the whole script is sent, blank line included"
    assert inp["captions"] == ["srt", "vtt"] and inp["burn_captions"] is True and inp["crossfade"] == 0.25
    assert inp["draft"] is True and inp["mode"] == "distilled" and (inp["width"], inp["height"]) == (128, 128)
    assert "draft (half size, fast)" in texts(at.caption) and "captions SRT + WebVTT" in texts(at.caption)


@pytest.fixture(scope="module")
def finished_script(server) -> dict:
    """A finished draft of a three-segment script with both caption files, made through the API."""
    job = server.client.post(
        "/v1/predictions", json={"input": {"text": SCRIPT, "captions": ["srt", "vtt"], "draft": True, **SMALL}}
    ).json()
    assert "id" in job, job
    return server.wait_status(job["id"], ("succeeded",), timeout=600)


def test_jobs_script_segments_retake_finalize(at, server, finished_script):
    cancel_all(server)
    parent = finished_script["id"]
    at.session_state["focus_job"] = parent
    at.switch_page("views/jobs.py").run()
    no_exception(at)
    assert any(e.label == "3 segments" for e in at.expander), [e.label for e in at.expander]
    shown = texts(at.markdown)
    for seg, words in zip(finished_script["output"]["segments"], SCRIPT_SEGMENTS):
        assert words in shown, (words, shown)
        assert f"**{seg['number']}** · {seg['start'] // 60:.0f}:" in shown
    assert "**1** · 0:00.0–" in shown and "take 1" in shown
    labels = [b.label for b in at.get("download_button")]
    assert {"Download MP4", "Download SRT captions", "Download WebVTT captions"} <= set(labels), labels
    assert at.button(key=f"finalize-{parent}"), "a draft offers Finalize"

    # A retake whose new words do not fit one segment is refused, in words, and nothing is queued.
    before = len(server.client.get("/v1/predictions", params={"limit": 200}).json()["results"])
    at.text_input(key=f"retake-text-{parent}-2").input(" ".join(["word"] * 60))
    at.button(key=f"retake-{parent}-2").click().run()
    no_exception(at)
    assert "Segment 2 was not retaken" in texts(at.error), texts(at.error)
    assert len(server.client.get("/v1/predictions", params={"limit": 200}).json()["results"]) == before

    # Retake segment 2 with new words: a new job that remakes only that segment.
    at.text_input(key=f"retake-text-{parent}-2").input("Every part fits the model well.")
    at.button(key=f"retake-{parent}-2").click().run()
    no_exception(at)
    retake = at.session_state["focus_job"]
    assert retake != parent
    doc = server.client.get(f"/v1/predictions/{retake}").json()
    assert doc["input"]["source"] == {
        "prediction": parent,
        "action": "retake",
        "segment": 2,
        "text": "Every part fits the model well.",
    }
    assert at.text_input(key=f"retake-text-{parent}-2").value == "", "the box is emptied once it is sent"
    doc = server.wait_status(retake, ("succeeded",), timeout=240)
    at.run()
    no_exception(at)
    source = at.button(key=f"source-{retake}")
    assert "Retake of segment 2" in source.label and parent in source.label
    shown = texts(at.markdown)
    assert "Every part fits the model well." in shown and "take 2" in shown
    assert [s["reused"] for s in doc["output"]["segments"]] == [True, False, True]

    # Back to the draft through the retake's source, then Finalize it (fast, to keep the test short).
    source.click().run()
    assert at.session_state["focus_job"] == parent
    at.selectbox(key=f"finalize-mode-{parent}").select("distilled")
    at.button(key=f"finalize-{parent}").click().run()
    no_exception(at)
    final = at.session_state["focus_job"]
    doc = server.client.get(f"/v1/predictions/{final}").json()
    assert doc["input"]["source"] == {"prediction": parent, "action": "finalize", "segment": None, "text": None}
    assert doc["input"]["draft"] is False and doc["input"]["mode"] == "distilled"
    assert "Finalized from draft" in at.button(key=f"source-{final}").label
    cancel_all(server)
    for job_id in (final, retake, parent):  # the gallery test below counts on its one clip being on page 1
        server.wait_status(job_id, ("succeeded", "canceled", "failed"), timeout=240)
        assert server.client.delete(f"/v1/predictions/{job_id}").status_code == 204


# --- Jobs -----------------------------------------------------------------------------------------------------


def test_jobs_queue_positions_cancel_retry(at, server, finished):
    cancel_all(server)
    # A long job first, so the second one surely waits in the queue while the page looks at it.
    first = server.client.post(
        "/v1/predictions",
        json={
            "input": {
                "text": "A long line that keeps the only worker busy for a while.",
                "mode": "two-stage",
                "width": 256,
                "height": 256,
            }
        },
    ).json()
    second = server.client.post("/v1/predictions", json={"input": {"text": "Two.", **SMALL}}).json()
    at.switch_page("views/jobs.py").run()
    no_exception(at)
    assert "Queue (2)" in [h.value for h in at.subheader]
    labels = [p.text for p in at.get("progress")]
    assert "Waiting in the queue: position 1" in labels, labels

    at.button(key=f"cancel-{second['id']}").click().run()
    assert server.client.get(f"/v1/predictions/{second['id']}").json()["status"] == "canceled"
    at.run()
    at.button(key=f"retry-{second['id']}").click().run()
    retried = at.session_state["focus_job"]
    assert server.client.get(f"/v1/predictions/{retried}").json()["retried_from"] == second["id"]
    cancel_all(server)
    server.wait_status(first["id"], ("canceled", "succeeded"), timeout=60)
    server.wait_status(retried, ("canceled",), timeout=60)

    # A finished one plays in the page, with its download.
    at.session_state["focus_job"] = finished["id"]
    at.run()
    no_exception(at)
    assert at.get("video"), "the focused, finished clip is playable"
    assert any(b.label == "Download MP4" for b in at.get("download_button"))


def test_jobs_error_in_plain_words(server, studio_env):
    # The real case: the reference photo vanished from disk (a clean-up by hand) before the worker got to it.
    photo = server.client.post("/v1/files", files={"file": ("me.png", astronaut_png(), "image/png")}).json()
    for path in (Path(server.root) / "outputs" / ".state" / "uploads").rglob("*"):
        if path.is_file():
            path.unlink()
    job = server.client.post("/v1/predictions", json={"input": {"text": "Hi.", "image": photo["id"], **SMALL}}).json()
    doc = server.wait_status(job["id"], ("failed",), timeout=120)

    studio_env(server.url)
    at = AppTest.from_file(str(APP), default_timeout=scaled(30))
    at.session_state["focus_job"] = job["id"]
    at.run().switch_page("views/jobs.py").run()
    no_exception(at)
    message = texts(at.error)
    assert "The server could not use this request" in message and "no longer exists" in message, message
    assert doc["error_code"] == "invalid_input"
    assert at.button(key=f"retry-{job['id']}"), "a failed job offers a retry"


# --- Gallery --------------------------------------------------------------------------------------------------


def test_gallery_play_parameters_rerun_delete(at, server, finished):
    at.switch_page("views/gallery.py").run()
    no_exception(at)
    assert at.title[0].value == "Gallery"
    assert at.get("video") and any(b.label == "Download MP4" for b in at.get("download_button"))
    table = at.get("table")
    assert table, "parameters are shown"

    at.button(key=f"rerun-{finished['id']}").click().run()
    no_exception(at)
    new_id = at.session_state["focus_job"]
    assert at.title[0].value == "Jobs"
    new = server.client.get(f"/v1/predictions/{new_id}").json()
    assert new["input"] == finished["input"], "re-run keeps every parameter, the seed included"
    cancel_all(server)

    at.switch_page("views/gallery.py").run()
    at.button(key=f"delete-{finished['id']}").click().run()
    no_exception(at)
    assert server.client.get(f"/v1/predictions/{finished['id']}").status_code == 404


# --- Face profiles --------------------------------------------------------------------------------------------


def test_profiles_photo_feedback(at, server):
    at.switch_page("views/profiles.py").run()
    no_exception(at)
    assert "No face profiles yet." in texts(at.caption)
    at.text_input(key="train_name").input("-bad").run()
    assert "may use letters" in texts(at.caption)
    at.text_input(key="train_name").input("Astro").run()

    uploader = at.file_uploader(key="train_photos_0")
    uploader.set_value([("a.png", astronaut_png(0), "image/png"), ("b.png", astronaut_png(1), "image/png")]).run()
    assert "a profile needs 3–10" in texts(at.warning)
    assert at.button(key="train_start").disabled

    files = [(f"astro-{i}.png", astronaut_png(i), "image/png") for i in range(3)]
    files += [("red.png", png(), "image/png"), ("broken.png", b"not an image", "image/png")]
    at.file_uploader(key="train_photos_0").set_value(files).run()
    assert "broken.png**: it is not a picture" in texts(at.markdown)
    assert at.button(key="train_start").disabled, "a photo that is not an image blocks the start"

    at.file_uploader(key="train_photos_0").set_value(files[:4]).run()
    at.number_input(key="train_steps").set_value(10).run()
    assert not at.button(key="train_start").disabled
    at.button(key="train_start").click().run()
    no_exception(at)
    marks = texts(at.markdown)
    assert "red.png**: no face" in marks, marks  # the server's verdict, under that photo
    assert "astro-0.png: one face found" in marks
    assert "cannot be used" in texts(at.error)
    assert server.client.get("/v1/trainings").json()["results"] == [], "a rejected set starts nothing"


# --- Server ---------------------------------------------------------------------------------------------------


def test_server_page(at, server):
    at.switch_page("views/server.py").run()
    no_exception(at)
    assert any(h.value.startswith("Health: ") for h in at.subheader)
    assert "tiny test checkpoint" in texts(at.warning)
    assert at.dataframe, "the workers table"
    assert at.get("table"), "model and connection tables"
    at.text_input(key="conn_url").input(f"http://127.0.0.1:{free_port()}")
    at.button(key="conn_submit").click().run()
    assert "Not switched: Cannot reach" in texts(at.error)
    assert "api_url_override" not in at.session_state, "a URL that does not answer is not switched to"


# --- newcomers: the first clip, junk files, guards, versions -------------------------------------------------

JUNK = b"Notes for Monday: call the studio about the shoot.\n" * 40  # a text file renamed .png / .wav


def gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (256, 256), (0, 90, 200)).save(buf, "GIF")
    return buf.getvalue()


def test_first_clip_is_one_click(server, studio_env):
    """A fresh session on the tiny checkpoint: nothing to upload, a real text and description in the boxes, a
    small size chosen, and one click on Generate makes a clip."""
    cancel_all(server)
    studio_env(server.url)
    at = AppTest.from_file(str(APP), default_timeout=scaled(30)).run()
    no_exception(at)
    assert at.radio(key="create_mode").value == "random", "the default needs no upload"
    text, description = at.text_area(key="create_text").value, at.text_area(key="create_description").value
    assert text.strip() and description.strip(), "real, editable text in both boxes (not a grey placeholder)"
    assert at.selectbox(key="create_size").value == "Thumbnail 128×128 (smoke test)"
    assert "tiny test checkpoint is loaded, so the size starts small" in texts(at.caption)
    preview = next(e for e in at.expander if e.label.startswith("Prompt preview"))
    assert description in texts(preview.markdown) and text in texts(preview.markdown)

    at.button(key="create_submit").click().run()
    no_exception(at)
    assert at.title[0].value == "Jobs"
    doc = server.wait_status(at.session_state["focus_job"], ("succeeded",), timeout=120)
    inp = doc["input"]
    assert (inp["text"], inp["avatar_description"]) == (text, description)
    assert (inp["width"], inp["height"], inp["mode"]) == (128, 128, "distilled") and not inp.get("image")
    print(
        f"one-click first clip: queued {doc['metrics']['queue_time']} s, made in "
        f"{doc['metrics']['predict_time']} s, {doc['metrics']['total_time']} s in all"
    )


def test_junk_in_every_file_input_is_said_under_the_field(at, server):
    at.text_area(key="create_text").input("Keep these words.").run()
    at.radio(key="create_mode").set_value("photo").run()
    for name, data, why in (
        ("notes.png", JUNK, "it is not a picture this studio can read"),
        ("cut.png", astronaut_png()[:4000], "it is not a picture this studio can read"),
        ("anim.png", gif(), "it is a GIF picture; use PNG, JPEG or WebP"),
    ):
        at.file_uploader(key="create_photo_upload").upload(name, data, "image/png").run()
        no_exception(at)
        assert f"{name}** was not taken: {why}" in texts(at.error), texts(at.error)
        assert not at.image, "nothing is previewed"
        assert at.text_area(key="create_text").value == "Keep these words.", "the form is intact"
    at.button(key="create_submit").click().run()
    no_exception(at)
    assert "Upload a reference photo" in texts(at.error)

    # A real picture the server turns away (too small): said under the field after Generate, nothing queued.
    before = len(server.client.get("/v1/predictions", params={"limit": 200}).json()["results"])
    at.file_uploader(key="create_photo_upload").upload("speck.png", png(size=(8, 8)), "image/png").run()
    assert at.image, "a readable picture is previewed"
    at.button(key="create_submit").click().run()
    no_exception(at)
    assert at.title[0].value == "Create a talking avatar", "the page stays, with the form"
    assert "speck.png** was refused by the server" in texts(at.error) and "at least 64" in texts(at.error)
    assert len(server.client.get("/v1/predictions", params={"limit": 200}).json()["results"]) == before

    at.radio(key="create_mode").set_value("voice").run()
    at.file_uploader(key="create_voice_upload").upload("voice.wav", JUNK, "audio/wav").run()
    no_exception(at)
    assert "voice.wav** was not taken: it is not a recording this studio can read" in texts(at.error)
    at.file_uploader(key="create_voice_photo_upload").upload("face.png", JUNK, "image/png").run()
    no_exception(at)
    assert "face.png** was not taken" in texts(at.error)
    at.button(key="create_submit").click().run()
    assert "Record or upload your voice first." in texts(at.error)

    at.switch_page("views/profiles.py").run()
    at.file_uploader(key="train_photos_0").set_value(
        [("notes.png", JUNK, "image/png"), ("anim.png", gif(), "image/png")]
    ).run()
    no_exception(at)
    assert "notes.png**: it is not a picture" in texts(at.markdown)
    assert "anim.png**: it is a GIF picture" in texts(at.markdown)
    for page in PAGES:  # a junk file left in the session breaks no page
        at.switch_page(page).run()
        no_exception(at)
        assert "ran into a problem it did not expect" not in texts(at.error), page


def test_guards_say_why_next_to_the_control(at, server):
    before = len(server.client.get("/v1/predictions", params={"limit": 200}).json()["results"])
    at.number_input(key="create_seed").set_value(-3).run()
    assert "Seed must be a whole number from 0 to 2,147,483,647." in texts(at.markdown)
    at.button(key="create_submit").click().run()
    assert "out of its range" in texts(at.error)
    assert len(server.client.get("/v1/predictions", params={"limit": 200}).json()["results"]) == before
    at.radio(key="create_mode").set_value("photo").run()
    at.number_input(key="create_anchors").set_value(12).run()
    assert "Face anchors must be a whole number from 0 to 8." in texts(at.markdown)

    at.switch_page("views/profiles.py").run()
    assert at.button(key="train_start").disabled
    assert "it still needs a profile name; 3 more photos (3–10 in all)" in texts(at.caption)
    at.text_input(key="train_name").input("Ada").run()
    at.file_uploader(key="train_photos_0").set_value(
        [("a.png", astronaut_png(0), "image/png"), ("b.png", astronaut_png(1), "image/png")]
    ).run()
    assert "it still needs 1 more photo (3–10 in all)" in texts(at.caption)
    at.number_input(key="train_steps").set_value(5).run()
    assert "Training steps must be a whole number from 10 to 2,000." in texts(at.markdown)
    assert "the numbers above in their ranges" in texts(at.caption)

    at.switch_page("views/workspace.py").run()
    at.text_input(key="reset_confirm").input("reset").run()
    assert at.button(key="reset").disabled
    assert "Type it in capital letters: RESET." in texts(at.markdown)
    at.text_input(key="reset_confirm").input("").run()


def test_versions_grouped_with_thumbnails_and_every_file(at, server):
    cancel_all(server)
    body = {"input": {"text": "Versions of one line.", "captions": ["srt", "vtt"], **SMALL}}
    first = server.wait_status(
        server.client.post("/v1/predictions", json=body).json()["id"], ("succeeded",), timeout=240
    )
    again = server.wait_status(
        server.client.post("/v1/predictions", json=body).json()["id"], ("succeeded",), timeout=240
    )
    at.switch_page("views/gallery.py").run()
    no_exception(at)
    assert "2 versions of this text" in texts(at.caption)
    version = at.selectbox(key=f"version-{first['id']}")
    assert len(version.options) == 2 and version.value == again["id"], "the newest version is shown first"
    assert at.image[0].captions == ["Version 2", "Version 1"], "each version has its thumbnail"
    labels = {b.label for b in at.get("download_button")}
    assert {
        "Download MP4",
        "Download SRT captions",
        "Download WebVTT captions",
        "Download thumbnail",
        "Download metadata",
    } <= labels, labels
    version.set_value(first["id"]).run()
    no_exception(at)
    assert at.button(key=f"rerun-{first['id']}"), "the older version can be picked and used"

    # Its segments' retakes (and a draft's Finalize) are one click away, on the Jobs page.
    at.button(key=f"open-{first['id']}").click().run()
    no_exception(at)
    assert at.title[0].value == "Jobs" and at.session_state["focus_job"] == first["id"]
    assert at.button(key=f"retake-{first['id']}-1")
    assert at.image, "finished jobs show their thumbnail"
    for job in (first, again):
        assert server.client.delete(f"/v1/predictions/{job['id']}").status_code == 204


# --- Workspace (last: the reset empties the server) -----------------------------------------------------------


def test_workspace_clean_and_typed_reset(at, server):
    cancel_all(server)
    done = server.client.post("/v1/predictions", json={"input": {"text": "One to clean away.", **SMALL}}).json()
    server.wait_status(done["id"], ("succeeded",), timeout=120)
    at.switch_page("views/workspace.py").run()
    no_exception(at)
    metrics = {m.label: m.value for m in at.metric}
    assert {"Videos on disk", "Disk free", "Uploads", "Temp files", "Clips made", "Face trainings done"} <= set(metrics)
    clips = server.client.get("/v1/predictions", params={"status": "succeeded", "limit": 200}).json()["results"]
    assert metrics["Clips made"] == str(len(clips)), "clips are counted as clips, trainings on their own"

    at.button(key="clean").click().run()
    assert "Cleaned:" in texts(at.success)

    # Deleting finished jobs asks first, saying how many will go; "Keep them" deletes nothing.
    everything = server.client.get("/v1/predictions", params={"limit": 200}).json()["results"]
    trainings = server.client.get("/v1/trainings").json()["results"]
    finished_jobs = [j for j in everything + trainings if j["status"] in ("succeeded", "failed", "canceled")]
    assert finished_jobs
    at.checkbox(key="clean_outputs").check().run()
    at.button(key="clean").click().run()
    no_exception(at)
    n = len(finished_jobs)
    assert f"This deletes **{n} job{'s' if n != 1 else ''}**" in texts(at.warning), texts(at.warning)
    assert len(server.client.get("/v1/predictions", params={"limit": 200}).json()["results"]) == len(everything)
    at.button(key="clean_no").click().run()
    assert not at.warning or "This deletes" not in texts(at.warning)
    assert len(server.client.get("/v1/predictions", params={"limit": 200}).json()["results"]) == len(everything)
    at.button(key="clean").click().run()
    at.button(key="clean_yes").click().run()
    no_exception(at)
    assert f"{n} jobs deleted" in texts(at.success), texts(at.success)
    left = server.client.get("/v1/predictions", params={"limit": 200}).json()["results"]
    assert all(j["status"] not in ("succeeded", "failed", "canceled") for j in left)

    assert at.button(key="reset").disabled
    at.text_input(key="reset_confirm").input("reset").run()
    assert at.button(key="reset").disabled, "only the exact word unlocks it"
    at.text_input(key="reset_confirm").input("RESET").run()
    assert not at.button(key="reset").disabled
    at.button(key="reset").click().run()
    no_exception(at)
    assert "Reset done" in texts(at.success)
    assert server.client.get("/v1/predictions").json()["results"] == []


# --- no server, wrong key, exposed studio ---------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_every_page_says_when_the_server_is_down(page, studio_env):
    studio_env(f"http://127.0.0.1:{free_port()}")
    at = AppTest.from_file(str(APP), default_timeout=scaled(30)).run()
    at.switch_page(page).run()
    no_exception(at)
    assert "Cannot reach the Avatar server" in texts(at.error)


@pytest.fixture(scope="module")
def keyed_server(tmp_path_factory):
    # API only (no worker): the key checks need no model.
    with LiveServer(
        tmp_path_factory.mktemp("studio-keyed"), workers=0, env={"AVATAR_API_KEYS": '["right-key-123456"]'}
    ) as live:
        yield live


def test_wrong_key_is_said_in_words(keyed_server, studio_env):
    studio_env(keyed_server.url, key="wrong")
    at = AppTest.from_file(str(APP), default_timeout=scaled(30)).run()
    for page in PAGES:
        at.switch_page(page).run()
        no_exception(at)
        assert "API key is missing or wrong" in texts(at.error), page
    studio_env(keyed_server.url, key="right-key-123456")
    at = AppTest.from_file(str(APP), default_timeout=scaled(30)).run()
    no_exception(at)
    assert not at.error


def test_exposed_studio_asks_for_the_key_first(keyed_server, server, studio_env):
    studio_env(keyed_server.url, key="right-key-123456", address="0.0.0.0")
    at = AppTest.from_file(str(APP), default_timeout=scaled(30)).run()
    no_exception(at)
    assert [t.value for t in at.title] == ["Avatar Studio"]
    assert not at.radio and not at.get("video"), "nothing but the sign-in form"
    with pytest.raises(ValueError):
        at.switch_page("views/workspace.py")  # the real pages are not even registered

    at.text_input(key="sign_in_key").input("wrong")
    at.button(key="sign_in_submit").click().run()
    assert "not accepted" in texts(at.error)
    at.text_input(key="sign_in_key").input("right-key-123456")
    at.button(key="sign_in_submit").click().run()
    no_exception(at)
    assert at.title[0].value == "Create a talking avatar"

    # A key-less API behind an exposed studio: refused rather than opened to the network.
    studio_env(server.url, address="0.0.0.0")
    at = AppTest.from_file(str(APP), default_timeout=scaled(30)).run()
    at.text_input(key="sign_in_key").input("anything")
    at.button(key="sign_in_submit").click().run()
    assert "does not require a key" in texts(at.error)


# --- the process ----------------------------------------------------------------------------------------------


def test_studio_imports_no_torch(tmp_path):
    script = textwrap.dedent(f"""
        import os, sys
        os.environ["AVATAR_API_URL"] = "http://127.0.0.1:9"
        from streamlit import config
        config.set_option("server.address", "127.0.0.1")
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(APP)!r}, default_timeout=30).run()
        for page in {PAGES!r}:
            at.switch_page(page).run()
            assert not at.exception, page
        heavy = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "ltx2.api", "ltx2.services", "ltx2.store",
                                                                                "ltx2.worker", "ltx_")))
        print("HEAVY", heavy)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "HEAVY []" in out.stdout, out.stdout


def test_launcher_command_follows_the_api_host(monkeypatch):
    monkeypatch.delenv("AVATAR_API_KEY", raising=False)
    local = Studio.for_api(api_host="127.0.0.1", api_port=8000, ui_port=8501, api_keys=[])
    cmd = local.command()
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("frontend/app.py")
    assert cmd[cmd.index("--server.address") + 1] == "127.0.0.1"
    assert cmd[cmd.index("--server.port") + 1] == "8501"
    assert local._env()["AVATAR_API_URL"] == "http://127.0.0.1:8000" and "AVATAR_API_KEY" not in local._env()
    assert local.url == "http://127.0.0.1:8501"

    public = Studio.for_api(api_host="0.0.0.0", api_port=9000, ui_port=9501, api_keys=["k1", "k2"])
    cmd = public.command()
    assert cmd[cmd.index("--server.address") + 1] == "0.0.0.0"
    assert public._env()["AVATAR_API_URL"] == "http://127.0.0.1:9000"
    assert public._env()["AVATAR_API_KEY"] == "k1"

    # A calm accent instead of Streamlit's red, whose focus ring on a text box reads as an error.
    assert cmd[cmd.index("--theme.primaryColor") + 1] != "#FF4B4B"
    # The start-up output carries the tunnel command for this studio and its API.
    hint = local.tunnel_hint(8000)
    assert "ssh -N -L 8501:127.0.0.1:8501 -L 8000:127.0.0.1:8000 " in hint and "http://localhost:8501" in hint


def test_a_documents_web_url_opens_its_job(server, studio_env):
    # urls.web is the Jobs page with ?prediction=ID; the API echoes the input as sent (no width/height here), and
    # the page still says the size the worker used.
    job = server.client.post("/v1/predictions", json={"input": {"text": "Sent bare."}}).json()
    server.client.post(f"/v1/predictions/{job['id']}/cancel")
    assert job["urls"]["web"].endswith(f"/jobs?prediction={job['id']}") and "width" not in job["input"]
    studio_env(server.url)
    at = AppTest.from_file(str(APP), default_timeout=scaled(30))
    at.run().switch_page("views/jobs.py")
    at.query_params["prediction"] = job["id"]
    at.run()
    no_exception(at)
    assert at.session_state["focus_job"] == job["id"]
    assert "Your clip" in texts(at.subheader)
    assert "768×512" in texts(at.markdown) + texts(at.caption), texts(at.markdown)
