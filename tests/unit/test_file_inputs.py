"""Replicate's Files API shape (create with `content`/`metadata`, get, list with pages, delete) and file inputs given
as a file id, this server's file URL, a `data:` URI or an http(s) URL fetched through the guarded fetcher.

URLs are served by a real local HTTP server; only its allow-listed address gets through (AVATAR_FETCH_ALLOW).
"""

from __future__ import annotations

import base64
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.api_helpers import NothingWritten, api, assert_problem, files_under, png_bytes, upload, wav_bytes

PHOTO = png_bytes((96, 64), (200, 40, 40))
BIG = b"\x89PNG\r\n\x1a\n" + b"\0" * (2 * 2**20)


class _Handler(BaseHTTPRequestHandler):
    routes = {
        "/face.png": ("image/png", PHOTO),
        "/voice.wav": ("audio/wav", wav_bytes(1.0)),
        "/big.png": ("image/png", BIG),
        "/page.html": ("text/html", b"<html>not a photo</html>"),
        "/fake.png": ("image/png", b"this is not a png at all" * 10),
    }

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.hits.append(self.path)
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/face.png")
            self.end_headers()
            return
        content_type, body = self.routes.get(self.path, ("text/plain", None))
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def web():
    servers = []
    for _ in range(2):  # the first is allow-listed, the second is not
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.hits = []
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield [f"http://127.0.0.1:{s.server_address[1]}" for s in servers], servers
    for s in servers:
        s.shutdown()


@pytest.fixture
def served(tmp_path, web):
    (allowed, _), _ = web
    with api(tmp_path, fetch_allow=[allowed.removeprefix("http://")], max_upload_mb=1) as pair:
        yield pair


def _predict(client, **inp):
    return client.post("/v1/predictions", json={"input": {"text": "Hello there, a short line.", **inp}})


def _stored(client, settings, file_id: str) -> bytes:
    record = client.get(f"/v1/files/{file_id}").json()
    return (
        settings.uploads_dir / next(p for p, h in files_under(settings.uploads_dir).items() if h == record["sha256"])
    ).read_bytes()


# ============================================================================ the Files API


def test_files_create_takes_replicates_fields_and_returns_its_file_object(served):
    client, _ = served
    response = client.post(
        "/v1/files",
        files={"content": ("me.png", PHOTO, "image/png")},
        data={"metadata": '{"person": "ana", "n": 1}', "filename": "ana.png", "type": "image/png"},
    )
    assert response.status_code == 201, response.text
    doc = response.json()
    assert (
        doc["name"] == "ana.png" and doc["content_type"] == "image/png" and doc["metadata"] == {"person": "ana", "n": 1}
    )
    assert doc["checksums"]["sha256"] == doc["etag"] == doc["sha256"]
    assert doc["size"] > 0 and doc["created_at"] and doc["expires_at"] is None
    assert doc["urls"]["get"] == f"http://testserver/v1/files/{doc['id']}"
    assert hashlib.sha256(client.get(doc["urls"]["content"]).content).hexdigest() == doc["checksums"]["sha256"]
    assert client.get(f"/v1/files/{doc['id']}").json() == doc
    assert upload(client, PHOTO).status_code == 201  # the earlier field name `file` still works


@pytest.mark.parametrize("metadata", ["not json", "[1, 2]", '"text"', "{" + "x" * 20_000 + "}"])
def test_files_create_refuses_bad_metadata_before_storing(served, metadata):
    client, settings = served
    before = NothingWritten(client, settings)
    assert_problem(
        client.post("/v1/files", files={"content": ("a.png", PHOTO, "image/png")}, data={"metadata": metadata}), 422
    )
    before.check()


def test_files_list_pages_newest_first_and_delete_answers_204(served):
    client, settings = served
    ids = [upload(client, png_bytes(color=(i, 0, 0))).json()["id"] for i in range(5)]
    seen, url, pages = [], "/v1/files?limit=2", 0
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text
        body = page.json()
        assert set(body) >= {"results", "next", "previous"}
        seen += [f["id"] for f in body["results"]]
        url, pages = body["next"], pages + 1
    assert seen == ids[::-1] and pages == 3
    assert_problem(client.get("/v1/files?cursor=garbage"), 422)

    assert client.delete(f"/v1/files/{ids[0]}").status_code == 204
    assert_problem(client.get(f"/v1/files/{ids[0]}"), 404)
    assert [f["id"] for f in client.get("/v1/files").json()["results"]] == ids[:0:-1]
    assert len(files_under(settings.uploads_dir)) == 4


# ============================================================================ file inputs


def test_an_allow_listed_url_becomes_an_upload_through_the_decoder(served, web):
    client, settings = served
    (allowed, _), _ = web
    response = _predict(client, image=f"{allowed}/face.png", audio=f"{allowed}/voice.wav")
    assert response.status_code == 201, response.text
    inp = response.json()["input"]
    image, audio = client.get(f"/v1/files/{inp['image']}").json(), client.get(f"/v1/files/{inp['audio']}").json()
    assert image["kind"] == "image" and image["meta"] == {"width": 96, "height": 64} and image["name"] == "face.png"
    assert audio["kind"] == "audio" and audio["meta"]["duration"] == pytest.approx(1.0, abs=0.01)
    assert _stored(client, settings, inp["image"]).startswith(b"\x89PNG")  # re-encoded by the decoder


def test_a_data_uri_becomes_an_upload(served):
    client, _ = served
    uri = "data:image/png;base64," + base64.b64encode(PHOTO).decode()
    response = _predict(client, image=uri)
    assert response.status_code == 201, response.text
    assert client.get(f"/v1/files/{response.json()['input']['image']}").json()["meta"] == {"width": 96, "height": 64}


def test_this_servers_own_file_url_is_the_file(served):
    client, settings = served
    doc = upload(client, PHOTO).json()
    for url in (doc["urls"]["get"], doc["urls"]["content"]):
        response = _predict(client, image=url)
        assert response.status_code == 201, response.text
        assert response.json()["input"]["image"] == doc["id"]
    assert len(files_under(settings.uploads_dir)) == 1  # no copy made


def test_an_idempotent_repeat_with_a_url_reuses_the_first_upload(served, web):
    client, settings = served
    (allowed, _), _ = web
    body = {"input": {"text": "Hello there, a short line.", "image": f"{allowed}/face.png"}}
    first = client.post("/v1/predictions", json=body, headers={"Idempotency-Key": "url-1"})
    again = client.post("/v1/predictions", json=body, headers={"Idempotency-Key": "url-1"})
    assert first.status_code == 201 and again.status_code in (200, 201), again.text
    assert again.json()["id"] == first.json()["id"]
    assert len(files_under(settings.uploads_dir)) == 1


@pytest.mark.parametrize(
    "make, status, words",
    [
        (lambda a, b: f"{b}/face.png", 422, "loopback"),  # not allow-listed
        (lambda a, b: f"{a}/big.png", 413, "larger than"),
        (lambda a, b: f"{a}/page.html", 415, "text/html"),
        (lambda a, b: f"{a}/fake.png", 415, "not a supported image"),
        (lambda a, b: f"{a}/missing.png", 422, "404"),
        (lambda a, b: f"{a}/moved", 422, "redirects are not followed"),
        (lambda a, b: "http://169.254.169.254/latest/meta-data/", 422, "link-local"),
        (lambda a, b: "file:///etc/passwd", 422, "only http(s)"),
        (lambda a, b: "data:text/plain;base64,aGVsbG8=", 415, "text/plain"),
        (lambda a, b: "data:image/png;base64,@@@", 422, "base64"),
        (lambda a, b: "data:image/png;base64," + "A" * 2_000_000, 413, "data: URI"),
    ],
    ids=["not-allowed", "too-big", "html", "fake-png", "404", "redirect", "metadata", "file", "text", "bad64", "huge"],
)
def test_refused_file_inputs_are_4xx_and_nothing_is_written(served, web, make, status, words):
    client, settings = served
    (allowed, other), _ = web
    before = NothingWritten(client, settings)
    body = assert_problem(_predict(client, image=make(allowed, other)), status)
    assert words in body["detail"] and body["detail"].startswith("input.image"), body
    before.check()


def test_a_refused_request_drops_the_upload_it_fetched(served, web):
    client, settings = served
    (allowed, _), _ = web
    before = NothingWritten(client, settings)
    assert_problem(_predict(client, image=f"{allowed}/face.png", profile="nobody"), 422)  # fetched, then refused
    before.check()


def test_seed_generate_takes_reference_image_url(served, web):
    client, settings = served
    (allowed, other), _ = web
    form = {"text": "Hello there, a short line.", "reference_image_url": f"{allowed}/face.png"}
    response = client.post("/generate", data=form)
    assert response.status_code == 200, response.text
    job = client.get(f"/v1/predictions/{response.json()['job_id']}").json()
    assert client.get(f"/v1/files/{job['input']['image']}").json()["meta"] == {"width": 96, "height": 64}

    before = NothingWritten(client, settings)
    body = assert_problem(client.post("/generate", data={**form, "reference_image_url": f"{other}/face.png"}), 422)
    assert body["detail"].startswith("reference_image_url") and "AVATAR_FETCH_ALLOW" in body["detail"]
    before.check()
