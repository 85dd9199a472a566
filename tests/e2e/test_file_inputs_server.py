"""Files and file inputs against a real `avatar serve` with an API key: the official Replicate Python client
(replicate==1.0.7, unchanged) creates, gets, lists and deletes files, and a file it created is the photo of a
prediction that succeeds; a photo given as an http(s) URL (a local test server on an allow-listed address) and a
recording given as a `data:` URI produce a video; a URL that is not allow-listed is refused with nothing written."""

from __future__ import annotations

import base64
import json

import pytest
import replicate

from ltx2.media import probe
from tests.api_helpers import png_bytes, serve_photo, wav_bytes
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow
KEY = "files-test-key-0123456789"
QUICK = {"width": 64, "height": 64, "seconds": 0.4}
PHOTO = png_bytes((64, 64), (180, 120, 90))


@pytest.fixture(scope="module")
def photo_site():
    with serve_photo(PHOTO) as address:
        yield address


@pytest.fixture(scope="module")
def server(tmp_path_factory, photo_site):
    env = {"AVATAR_API_KEYS": json.dumps([KEY]), "AVATAR_FETCH_ALLOW": json.dumps([photo_site])}
    with LiveServer(tmp_path_factory.mktemp("files-live"), env=env) as live:
        live.client.headers["Authorization"] = f"Bearer {KEY}"
        yield live


@pytest.fixture
def client(server):
    return replicate.Client(api_token=KEY, base_url=server.url)


def _predict(server, **input_) -> str:
    response = server.client.post("/v1/predictions", json={"input": {"text": "Hello there.", **input_}})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _video(server, job_id: str) -> dict:
    doc = server.wait_status(job_id, ("succeeded", "failed", "canceled"), timeout=180)
    assert doc["status"] == "succeeded", doc
    video = server.client.get(f"/download/{doc['output']['video']}")
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    return doc


def test_replicate_client_files_and_a_created_file_as_input(server, client, tmp_path):
    path = tmp_path / "me.png"
    path.write_bytes(PHOTO)
    created = client.files.create(path, metadata={"person": "me"})
    assert isinstance(created, replicate.file.File)
    assert created.name == "me.png" and created.content_type == "image/png" and created.metadata == {"person": "me"}
    assert created.checksums["sha256"] == created.etag and created.size > 0
    assert client.files.get(created.id).checksums == created.checksums
    assert created.id in [f.id for f in client.files.list()]

    # The clients pass an uploaded file on as its urls.get (replicate.helpers.encode_json does exactly this).
    doc = _video(server, _predict(server, image=created.urls["get"], **QUICK))
    assert doc["input"]["image"] == created.id

    # And the client's own way: an open file as input is uploaded by files.create and sent as that URL.
    with path.open("rb") as photo:
        prediction = client.predictions.create(
            model="local/avatar", input={"text": "Hello there.", "image": photo, **QUICK}
        )
    doc = _video(server, prediction.id)
    assert doc["input"]["image"] != created.id and client.files.get(doc["input"]["image"]).name == "me.png"

    spare = client.files.create(path)
    assert client.files.delete(spare.id) is True
    assert spare.id not in [f.id for f in client.files.list()]
    with pytest.raises(replicate.exceptions.ReplicateError):
        client.files.get(spare.id)


def test_url_photo_and_data_uri_recording_produce_a_video(server, photo_site):
    voice = "data:audio/wav;base64," + base64.b64encode(wav_bytes(0.6)).decode()
    # The recording sets the length (no `seconds`); two steps keep the two-stage audio pipeline quick on a CPU.
    job = _predict(server, image=f"http://{photo_site}/face.png", audio=voice, width=64, height=64, steps=2)
    doc = _video(server, job)
    image = server.client.get(f"/v1/files/{doc['input']['image']}").json()
    assert image["meta"] == {"width": 64, "height": 64} and image["name"] == "face.png"
    audio = server.client.get(f"/v1/files/{doc['input']['audio']}").json()
    assert audio["kind"] == "audio"
    info = probe(server.root / "outputs" / doc["output"]["video"])
    assert (info.width, info.height) == (64, 64) and info.has_audio


@pytest.mark.parametrize(
    "url, words",
    [("{server}/health", "this server itself"), ("http://127.0.0.1:9/face.png", "loopback")],
    ids=["own-port", "not-allow-listed"],
)
def test_a_url_that_is_not_allow_listed_is_refused(server, url, words):
    before = server.client.get("/v1/files").json()["results"]
    image = url.format(server=server.url)
    response = server.client.post("/v1/predictions", json={"input": {"text": "Hello there.", "image": image}})
    assert response.status_code == 422 and response.headers["content-type"].startswith("application/problem+json")
    assert words in response.json()["detail"]
    assert server.client.get("/v1/files").json()["results"] == before


def test_seed_generate_with_reference_image_url_makes_a_video(server, photo_site):
    response = server.client.post(
        "/generate",
        data={"text": "Hello there.", "reference_image_url": f"http://{photo_site}/face.png"},
    )
    assert response.status_code == 200, response.text
    job = response.json()["job_id"]
    doc = _video(server, job)
    assert server.client.get(f"/v1/files/{doc['input']['image']}").json()["meta"] == {"width": 64, "height": 64}
    assert server.client.get(f"/status/{job}").json()["status"] == "completed"
