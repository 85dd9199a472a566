"""The HTTP contract of the API, with no worker process: what a client sees, and what a refusal leaves behind.

Every error is an RFC 9457 problem document; every refused request leaves no job, no upload and no change
in outputs/. Files are only ever served from inside outputs/ (never the hidden state folder), keys guard
everything but /health, and the API process never imports torch.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
import resource
import subprocess
import sys
import textwrap
import time

import pytest
from fastapi.testclient import TestClient

from ltx2.api.app import create_app
from ltx2.settings import PROJECT_ROOT
from tests.api_helpers import (
    PROBLEM,
    NothingWritten,
    api,
    assert_problem,
    bomb_png,
    create_job,
    files_under,
    job_ids,
    make_settings,
    png_bytes,
    raw_get,
    upload,
    wav_bytes,
)

OK_TEXT = "Hello there, this is a short line."


@pytest.fixture
def served(tmp_path):
    # A five-minute script maximum, so a 5,000-character script can be over it.
    with api(tmp_path, max_script_seconds=300) as pair:
        yield pair


# ============================================================================ 1. bad input


BAD_INPUTS = {
    "empty text": {"text": ""},
    "whitespace text": {"text": "   \n\t  "},
    "20k characters": {"text": "a" * 20_000},
    "width 100": {"text": OK_TEXT, "width": 100},
    "width 4096": {"text": OK_TEXT, "width": 4096},
    "speed 3": {"text": OK_TEXT, "speed": 3},
    "image_strength 1.5": {"text": OK_TEXT, "image_strength": 1.5},
    "unknown field": {"text": OK_TEXT, "voice": "deep"},
    "no text": {"width": 768},
}


@pytest.mark.parametrize("inp", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_prediction_input_is_refused_and_writes_nothing(served, inp):
    client, settings = served
    before = NothingWritten(client, settings)
    body = assert_problem(client.post("/v1/predictions", json={"input": inp}), 422)
    assert len(body["detail"]) < 1000  # a refusal never echoes a 20 000-character text back
    assert "a" * 1000 not in client.post("/v1/predictions", json={"input": inp}).text
    before.check()


def test_unknown_top_level_field_and_non_object_bodies_are_refused(served):
    client, settings = served
    before = NothingWritten(client, settings)
    assert_problem(client.post("/v1/predictions", json={"input": {"text": OK_TEXT}, "extra": 1}), 422)
    assert_problem(client.post("/v1/predictions", json=["x"]), 422)
    assert_problem(
        client.post("/v1/predictions", content=b"{not json", headers={"content-type": "application/json"}), 422
    )
    before.check()


def test_file_ids_must_exist_and_be_the_right_kind(served):
    client, settings = served
    audio = upload(client, wav_bytes(1.0), "voice.wav", "audio/wav")
    assert audio.status_code == 201, audio.text
    audio_id = audio.json()["id"]
    assert audio.json()["kind"] == "audio"
    before = NothingWritten(client, settings)

    body = assert_problem(client.post("/v1/predictions", json={"input": {"text": OK_TEXT, "image": "nope"}}), 422)
    assert "nope" in body["detail"] and "image" in body["detail"]
    body = assert_problem(client.post("/v1/predictions", json={"input": {"text": OK_TEXT, "audio": "nope"}}), 422)
    assert "audio" in body["detail"]
    body = assert_problem(client.post("/v1/predictions", json={"input": {"text": OK_TEXT, "image": audio_id}}), 422)
    assert "audio" in body["detail"] and "image" in body["detail"]
    before.check()


def test_script_over_the_maximum_names_the_estimate(served):
    client, settings = served
    before = NothingWritten(client, settings)
    text = " ".join(["word"] * 999)  # ~400 s at 150 words per minute; this server takes scripts up to 300 s
    body = assert_problem(client.post("/v1/predictions", json={"input": {"text": text}}), 422)
    estimate = re.search(r"about (\d+(?:\.\d+)?) s", body["detail"])
    assert estimate, body["detail"]
    assert float(estimate.group(1)) >= 390
    assert "300" in body["detail"]
    before.check()


@pytest.mark.parametrize(
    "extra, needle",
    [
        ({"webhook": "ftp://example.com/hook"}, "http"),
        ({"webhook": "not a url"}, "webhook"),
        ({"webhook": "http://user:pw@example.com/hook"}, "credentials"),
        ({"webhook": "https://example.com/hook", "webhook_events_filter": ["done"]}, "done"),
        ({"webhook": "https://example.com/hook", "webhook_events_filter": []}, "empty"),
        ({"webhook_events_filter": ["completed"]}, "webhook"),
    ],
    ids=["scheme", "spaces", "credentials", "unknown-event", "empty-filter", "filter-without-url"],
)
def test_bad_webhooks_are_refused(served, extra, needle):
    client, settings = served
    before = NothingWritten(client, settings)
    body = assert_problem(client.post("/v1/predictions", json={"input": {"text": OK_TEXT}, **extra}), 422)
    assert needle in body["detail"], body["detail"]
    before.check()


SEED_BAD_FORMS = {
    "empty text": {"text": ""},
    "whitespace text": {"text": "    "},
    "20k characters": {"text": "a" * 20_000},
    "image_strength 2.5": {"text": OK_TEXT, "image_strength": "2.5"},
    "playback_speed 0.1": {"text": OK_TEXT, "playback_speed": "0.1"},
    "script over the maximum": {"text": " ".join(["word"] * 999)},
    "unknown profile": {"text": OK_TEXT, "use_trained_profile": "true", "trained_person_name": "x"},
}


@pytest.mark.parametrize("form", SEED_BAD_FORMS.values(), ids=SEED_BAD_FORMS.keys())
def test_seed_generate_refuses_bad_forms_and_writes_nothing(served, form):
    client, settings = served
    before = NothingWritten(client, settings)
    assert_problem(client.post("/generate", data=form), (400, 404, 422))
    before.check()


def test_seed_generate_with_a_non_image_reference_keeps_nothing(served):
    client, settings = served
    before = NothingWritten(client, settings)
    response = client.post(
        "/generate",
        data={"text": OK_TEXT},
        files={"reference_image": ("face.png", b"this is plain text, not a photo", "image/png")},
    )
    body = assert_problem(response, (415, 422))
    assert "reference_image" in body["detail"]
    before.check()
    assert list(settings.uploads_dir.iterdir()) == []  # not even a hidden temp file


def test_seed_generate_rejected_after_storing_the_photo_keeps_nothing(served):
    client, settings = served
    before = NothingWritten(client, settings)
    response = client.post(
        "/generate",
        data={"text": " ".join(["word"] * 999)},
        files={"reference_image": ("face.png", png_bytes(), "image/png")},
    )
    assert_problem(response, 422)
    before.check()
    assert client.get("/workspace-status").json()["uploads"] == 0


def test_seed_generate_accepts_a_good_form(served):
    client, _ = served
    response = client.post(
        "/generate",
        data={"text": OK_TEXT, "image_strength": "2.0", "playback_speed": "1.5"},
        files={"reference_image": ("face.png", png_bytes(), "image/png")},
    )
    assert response.status_code == 200, response.text
    job_id = response.json()["job_id"]
    assert response.json()["status"] == "queued"
    job = client.get(f"/v1/predictions/{job_id}").json()
    assert job["input"]["image_strength"] == 1.0 and job["input"]["speed"] == 1.5
    status = client.get(f"/status/{job_id}").json()
    assert status["status"] == "queued" and status["queue_position"] == 1
    assert_problem(client.get("/status/unknown"), 404)


def test_seed_generate_idempotency_conflict_keeps_no_photo(served):
    client, settings = served
    first = client.post("/generate", data={"text": OK_TEXT}, headers={"Idempotency-Key": "seed-1"})
    assert first.status_code == 200, first.text
    before = NothingWritten(client, settings)
    again = client.post(
        "/generate",
        data={"text": "Something else entirely."},
        files={"reference_image": ("face.png", png_bytes(), "image/png")},
        headers={"Idempotency-Key": "seed-1"},
    )
    assert_problem(again, 409)
    before.check()


def test_seed_generate_repeat_with_the_same_photo_is_idempotent(served):
    client, settings = served
    form = {"text": OK_TEXT, "image_strength": "1.9"}

    def send():
        return client.post(
            "/generate",
            data=form,
            files={"reference_image": ("face.png", png_bytes(), "image/png")},
            headers={"Idempotency-Key": "seed-photo"},
        )

    first, second = send(), send()
    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    assert first.json()["job_id"] == second.json()["job_id"]
    assert job_ids(client) == [first.json()["job_id"]]
    assert len(files_under(settings.uploads_dir)) == 1  # the repeat's copy of the photo is not kept
    assert_problem(client.post("/generate", data=form, headers={"Idempotency-Key": "k" * 256}), 422)


# ============================================================================ 2. uploads


def test_upload_a_photo_then_read_it_back(served):
    client, settings = served
    response = upload(client, png_bytes((200, 150)))
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["kind"] == "image" and doc["content_type"] == "image/png"
    assert re.fullmatch(r"[0-9a-f]{64}", doc["sha256"]) and doc["size"] > 0
    assert doc["meta"] == {"width": 200, "height": 150}

    record = client.get(f"/v1/files/{doc['id']}")
    assert record.status_code == 200 and record.json() == doc
    content = client.get(f"/v1/files/{doc['id']}/content")
    assert content.status_code == 200
    assert content.headers["content-type"] == "image/png"
    assert len(content.content) == doc["size"]
    assert hashlib.sha256(content.content).hexdigest() == doc["sha256"]
    stored = list(files_under(settings.uploads_dir).values())
    assert stored == [doc["sha256"]]

    assert_problem(client.get("/v1/files/doesnotexist"), 404)
    assert_problem(client.get("/v1/files/doesnotexist/content"), 404)


def test_upload_a_recording(served):
    client, _ = served
    response = upload(client, wav_bytes(1.5), "voice.wav", "audio/wav")
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["kind"] == "audio" and doc["meta"]["duration"] == pytest.approx(1.5, abs=0.01)
    job = create_job(client, audio=doc["id"])
    assert job["input"]["audio"] == doc["id"]


def test_text_named_png_is_refused(served):
    client, settings = served
    before = NothingWritten(client, settings)
    body = assert_problem(upload(client, b"hello, I am text\n" * 50, "photo.png", "image/png"), (415, 422))
    assert body["title"]
    before.check()
    assert list(settings.uploads_dir.iterdir()) == []


@pytest.mark.parametrize("size", [(50_000, 50_000), (8_000, 6_000)], ids=["over-pillow-limit", "over-40MP"])
def test_decompression_bomb_is_refused_without_decoding(served, size):
    client, settings = served
    before = NothingWritten(client, settings)
    data = bomb_png(*size)
    assert len(data) < 2 * 2**20
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    started = time.monotonic()
    body = assert_problem(upload(client, data, "bomb.png"), (413, 422))
    assert time.monotonic() - started < 5
    # Decoding 2.5 gigapixels would need gigabytes; 48 MP at least ~140 MB as RGB.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100 * 1024
    assert "pixel" in body["detail"] or "MP" in body["detail"]
    before.check()
    assert list(settings.uploads_dir.iterdir()) == []


def test_oversize_upload_is_413(tmp_path):
    with api(tmp_path, max_upload_mb=1) as (client, settings):
        before = NothingWritten(client, settings)
        body = assert_problem(upload(client, b"\0" * (2**20 + 1), "big.wav", "audio/wav"), 413)
        assert "1 MB" in body["detail"]
        assert_problem(upload(client, png_bytes() + b"\0" * 2**20, "big.png"), 413)
        # Far past the limit: refused at the door, still as a problem document.
        assert_problem(upload(client, b"\0" * (3 * 2**20), "huge.wav", "audio/wav"), 413)
        assert_problem(
            client.post(
                "/generate",
                data={"text": OK_TEXT},
                files={"reference_image": ("huge.png", b"\0" * (3 * 2**20), "image/png")},
            ),
            413,
        )
        before.check()
        assert list(settings.uploads_dir.iterdir()) == []


def test_upload_without_a_file_is_422(served):
    client, settings = served
    before = NothingWritten(client, settings)
    assert_problem(client.post("/v1/files", data={"file": "not a file"}), 422)
    assert_problem(client.post("/v1/files"), 422)
    before.check()


# ============================================================================ 3. path traversal

SECRET = b"outside-secret-do-not-serve"

TRAVERSALS = [
    "/download/..",
    "/download/../secret.mp4",
    "/download/../../etc/passwd",
    "/download/%2e%2e",
    "/download/%2e%2e/secret.mp4",
    "/download/%2e%2e%2fsecret.mp4",
    "/download/..%2fsecret.mp4",
    "/download/..%2f..%2fetc%2fpasswd",
    "/download/%252e%252e%252fsecret.mp4",
    "/download/%2Fetc%2Fpasswd",
    "/download//etc/passwd",
    "/download/..\\secret.mp4",
    "/download/..\\..\\x",
    "/download/.state/avatar.db",
    "/download/%2Estate%2Favatar.db",
    "/download/.state%2Favatar.db",
    "/download/.state",
    "/download/.env",
    "/download/link.mp4",
    "/download/x.mp4%00.json",
    "/download/C:%5Cwindows%5Cwin.ini",
    "/v1/files/..%2f..%2fsecret.mp4/content",
    "/v1/files/%2e%2e/content",
    "/v1/files/..%2f.state%2favatar.db/content",
    "/v1/files/%2Fetc%2Fpasswd/content",
    "/v1/files/..\\..\\x/content",
    "/v1/files/../../secret.mp4",
]


@pytest.fixture
def with_files(tmp_path):
    with api(tmp_path) as (client, settings):
        (tmp_path / "secret.mp4").write_bytes(SECRET)
        (settings.outputs_dir / ".env").write_bytes(SECRET)
        (settings.outputs_dir / "link.mp4").symlink_to(tmp_path / "secret.mp4")
        (settings.outputs_dir / "x.mp4").write_bytes(bytes(range(256)) * 4)
        yield client, settings


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_never_serves_a_file_outside(with_files, target):
    client, settings = with_files
    db = (settings.state_dir / "avatar.db").read_bytes()[:64]
    status, headers, body = raw_get(client.app, target)
    assert 400 <= status < 500, (status, body[:200])
    assert headers["content-type"].startswith("application/problem+json"), headers
    assert SECRET not in body and b"root:" not in body and db not in body
    # And the same through an HTTP client (which may normalise dot segments first).
    response = client.get(target)
    assert 400 <= response.status_code < 500
    assert SECRET not in response.content and b"SQLite format" not in response.content


def test_a_real_output_is_served_with_ranges(with_files):
    client, settings = with_files
    data = (settings.outputs_dir / "x.mp4").read_bytes()
    response = client.get("/download/x.mp4")
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers.get("accept-ranges") == "bytes"

    part = client.get("/download/x.mp4", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206
    assert part.content == data[:10]
    assert part.headers["content-range"] == f"bytes 0-9/{len(data)}"

    tail = client.get("/download/x.mp4", headers={"Range": "bytes=-4"})
    assert tail.status_code == 206 and tail.content == data[-4:]
    beyond = client.get("/download/x.mp4", headers={"Range": f"bytes={len(data) + 10}-"})
    assert beyond.status_code == 416

    # Only videos, thumbnails and metadata are served, even from outputs/ itself.
    (settings.outputs_dir / "notes.txt").write_text("private")
    assert_problem(client.get("/download/notes.txt"), 404)
    assert_problem(client.get("/download/missing.mp4"), 404)


# ============================================================================ 4. idempotency


def test_idempotency_key_replays_and_conflicts(served):
    client, _ = served
    body = {"input": {"text": OK_TEXT, "seed": 7}}
    first = client.post("/v1/predictions", json=body, headers={"Idempotency-Key": "abc-123"})
    second = client.post("/v1/predictions", json=body, headers={"Idempotency-Key": "abc-123"})
    assert first.status_code == 201, first.text
    assert second.status_code == 200, second.text
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["location"] == first.headers["location"]
    assert job_ids(client) == [first.json()["id"]]

    changed = {"input": {"text": OK_TEXT, "seed": 8}}
    problem = assert_problem(client.post("/v1/predictions", json=changed, headers={"Idempotency-Key": "abc-123"}), 409)
    assert problem["existing"] == first.json()["id"]
    assert job_ids(client) == [first.json()["id"]]

    other = client.post("/v1/predictions", json=body, headers={"Idempotency-Key": "abc-124"})
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    assert_problem(client.post("/v1/predictions", json=body, headers={"Idempotency-Key": "k" * 256}), 422)


# ============================================================================ 5. auth


def test_api_keys_guard_everything_but_health(tmp_path):
    with api(tmp_path, api_keys=["k1"]) as (client, settings):
        (settings.outputs_dir / "x.mp4").write_bytes(b"0123456789abcdef")
        assert client.get("/health").status_code == 200
        assert client.get("/health-check").status_code == 200

        body = assert_problem(client.get("/v1/predictions"), 401)
        assert "API key" in body["detail"]
        assert client.get("/v1/predictions").headers["www-authenticate"] == "Bearer"
        assert_problem(client.get("/v1/predictions", headers={"Authorization": "Bearer nope"}), 401)
        assert_problem(client.get("/v1/predictions", headers={"X-API-Key": "nope"}), 401)
        assert_problem(client.get("/v1/predictions", headers={"Authorization": "k1"}), 401)
        assert_problem(client.get("/v1/predictions", headers={"Authorization": "Bearer "}), 401)
        assert client.get("/v1/predictions", headers={"Authorization": "Bearer k1"}).status_code == 200
        assert client.get("/v1/predictions", headers={"authorization": "bearer k1"}).status_code == 200
        assert client.get("/v1/predictions", headers={"X-API-Key": "k1"}).status_code == 200

        client.headers["X-API-Key"] = "k1"
        before = NothingWritten(client, settings)
        del client.headers["X-API-Key"]
        unauthenticated = [
            ("POST", "/v1/predictions", {"json": {"input": {"text": OK_TEXT}}}),
            ("POST", "/v1/files", {"files": {"file": ("a.png", png_bytes(), "image/png")}}),
            ("GET", "/v1/files/abc", {}),
            ("GET", "/download/x.mp4", {}),
            ("POST", "/generate", {"data": {"text": OK_TEXT}}),
            ("GET", "/status/abc", {}),
            ("GET", "/workspace-status", {}),
            ("POST", "/clean-workspace", {}),
            ("POST", "/master-reset", {"data": {"confirm": "RESET"}}),
            ("GET", "/metrics", {}),
            ("GET", "/v1/workers", {}),
            ("GET", "/v1/trainings", {}),
            ("POST", "/v1/trainings", {"data": {"name": "x"}}),
            ("GET", "/v1/profiles", {}),
            ("GET", "/v1/profiles/x/photo", {}),
            ("GET", "/v1/profiles/x/preview", {}),
            ("POST", "/train-face", {"data": {"person_name": "x"}}),
            ("GET", "/training-status", {}),
        ]
        for method, path, kwargs in unauthenticated:
            assert_problem(client.request(method, path, **kwargs), 401)
        client.headers["X-API-Key"] = "k1"
        before.check()
        assert (settings.outputs_dir / "x.mp4").exists()
        assert client.get("/download/x.mp4").content == b"0123456789abcdef"
        assert client.get("/workspace-status").status_code == 200
        assert client.post("/generate", data={"text": OK_TEXT}).status_code == 200


def test_no_keys_means_open(served):
    client, _ = served
    assert client.get("/v1/predictions").status_code == 200
    assert client.get("/metrics").status_code == 200


# ============================================================================ 6. master reset


def _populate(client, settings):
    jobs = [create_job(client)["id"], create_job(client, seed=2)["id"]]
    file_id = upload(client, png_bytes()).json()["id"]
    for name in ("a.mp4", "a.jpg", "a.json"):
        (settings.outputs_dir / name).write_bytes(b"data " + name.encode())
    (settings.outputs_dir / "keep.txt").write_text("not ours")
    (settings.temp_dir / "scratch.bin").write_bytes(b"x")
    profile = settings.profiles_dir / ("ab" * 10)  # what a trained profile leaves: photos and weights
    profile.mkdir(parents=True)
    (profile / "best.png").write_bytes(png_bytes())
    return jobs, file_id


@pytest.mark.parametrize(
    "form", [None, {"confirm": ""}, {"confirm": "reset"}, {"confirm": "RESET "}, {"confirm": "yes"}]
)
def test_master_reset_needs_the_exact_word(served, form):
    client, settings = served
    jobs, file_id = _populate(client, settings)
    before = NothingWritten(client, settings)
    body = assert_problem(client.post("/master-reset", data=form), 400)
    assert "RESET" in body["detail"]
    before.check()
    assert sorted(job_ids(client)) == sorted(jobs)
    assert client.get(f"/v1/files/{file_id}").status_code == 200
    assert all(client.get(f"/v1/predictions/{j}").json()["status"] == "starting" for j in jobs)
    assert (settings.temp_dir / "scratch.bin").exists()
    assert (settings.profiles_dir / ("ab" * 10) / "best.png").exists()


def test_master_reset_cancels_and_removes_everything(served):
    client, settings = served
    jobs, file_id = _populate(client, settings)
    response = client.post("/master-reset", data={"confirm": "RESET"})
    assert response.status_code == 200, response.text
    assert response.json()["canceled_jobs"] == 2
    assert job_ids(client) == []
    assert_problem(client.get(f"/v1/files/{file_id}"), 404)
    assert_problem(client.get(f"/v1/predictions/{jobs[0]}"), 404)
    assert files_under(settings.uploads_dir) == {}
    assert files_under(settings.temp_dir) == {}
    assert files_under(settings.profiles_dir) == {}  # no face photo outlives a reset
    left = sorted(p.name for p in settings.outputs_dir.iterdir() if p.is_file())
    assert left == ["keep.txt"]
    assert (settings.state_dir / "avatar.db").is_file()
    # The store still works afterwards.
    again = create_job(client)
    assert job_ids(client) == [again["id"]]
    assert client.get("/workspace-status").json()["jobs"] == {"starting": 1}


# ============================================================================ 7. cancel, retry, delete


def test_cancel_retry_delete(served):
    client, _ = served
    job = create_job(client)
    assert job["status"] == "starting" and job["queue_position"] == 1 and job["completed_at"] is None

    waiting_retry = assert_problem(client.post(f"/v1/predictions/{job['id']}/retry"), 409)
    assert "starting" in waiting_retry["detail"]
    assert_problem(client.delete(f"/v1/predictions/{job['id']}"), 409)

    canceled = client.post(f"/v1/predictions/{job['id']}/cancel")
    assert canceled.status_code == 200
    doc = canceled.json()
    assert doc["status"] == "canceled" and doc["completed_at"] is not None
    assert doc["status_sequence"] > job["status_sequence"]
    assert doc["queue_position"] is None
    assert client.get(f"/v1/predictions/{job['id']}").json()["status"] == "canceled"
    # Canceling again is harmless and changes nothing.
    assert client.post(f"/v1/predictions/{job['id']}/cancel").json()["status_sequence"] == doc["status_sequence"]

    retried = client.post(f"/v1/predictions/{job['id']}/retry")
    assert retried.status_code == 201, retried.text
    new = retried.json()
    assert new["id"] != job["id"] and new["retried_from"] == job["id"]
    assert new["status"] == "starting" and new["input"] == job["input"]

    assert client.delete(f"/v1/predictions/{job['id']}").status_code == 204
    assert_problem(client.get(f"/v1/predictions/{job['id']}"), 404)
    assert_problem(client.delete(f"/v1/predictions/{job['id']}"), 404)
    assert_problem(client.post(f"/v1/predictions/{job['id']}/cancel"), 404)
    assert_problem(client.post(f"/v1/predictions/{job['id']}/retry"), 404)
    assert job_ids(client) == [new["id"]]


def test_stream_of_a_finished_job_ends(served):
    client, _ = served
    job = create_job(client)
    client.post(f"/v1/predictions/{job['id']}/cancel")
    response = client.get(f"/v1/predictions/{job['id']}/stream")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    # Replicate's events by default; the whole document on request.
    assert response.text.endswith('event: done\nid: 1\ndata: {"reason": "canceled"}\n\n'), response.text
    documents = client.get(f"/v1/predictions/{job['id']}/stream", params={"format": "documents"})
    assert "event: completed" in documents.text and '"status": "canceled"' in documents.text
    assert_problem(client.get("/v1/predictions/nope/stream"), 404)


def test_prefer_wait_returns_at_once_for_a_finished_job(served):
    client, _ = served
    job = create_job(client)
    client.post(f"/v1/predictions/{job['id']}/cancel")
    started = time.monotonic()
    response = client.get(f"/v1/predictions/{job['id']}", headers={"Prefer": "wait=5"})
    assert response.json()["status"] == "canceled" and time.monotonic() - started < 2


# ============================================================================ 8. listing


def test_list_pages_with_next(served):
    client, _ = served
    made = [create_job(client, seed=i)["id"] for i in range(5)]
    client.post(f"/v1/predictions/{made[0]}/cancel")
    waiting = list(reversed(made[1:]))  # newest first

    page = client.get("/v1/predictions", params={"status": "starting", "limit": 2})
    assert page.status_code == 200
    seen = [j["id"] for j in page.json()["results"]]
    assert seen == waiting[:2]
    nxt = page.json()["next"]
    assert nxt and "cursor=" in nxt and "status=starting" in nxt and "limit=2" in nxt
    while nxt:
        page = client.get(nxt)
        assert page.status_code == 200
        seen += [j["id"] for j in page.json()["results"]]
        nxt = page.json()["next"]
    assert seen == waiting

    everything = client.get("/v1/predictions", params=[("status", "starting"), ("status", "canceled")]).json()
    assert [j["id"] for j in everything["results"]] == list(reversed(made))
    assert everything["next"] is None

    body = assert_problem(client.get("/v1/predictions", params={"status": "queued"}), 422)
    assert "queued" in body["detail"]
    assert_problem(client.get("/v1/predictions", params={"limit": 0}), 422)
    assert_problem(client.get("/v1/predictions", params={"limit": 1000}), 422)
    assert_problem(client.get("/v1/predictions", params={"cursor": "abc"}), 422)
    # A cursor past the database's integer range is a 422, not an overflow inside the query.
    assert_problem(client.get("/v1/predictions", params={"cursor": 2**70}), 422)
    assert_problem(client.get("/v1/trainings", params={"cursor": 2**70}), 422)
    assert_problem(client.get("/v1/trainings", params={"cursor": -1}), 422)


# ============================================================================ 9. health and metrics


def test_health_check_and_metrics_without_a_worker(served):
    client, _ = served
    for i in range(3):
        create_job(client, seed=i)
    canceled = create_job(client, seed=9)
    client.post(f"/v1/predictions/{canceled['id']}/cancel")

    check = client.get("/health-check").json()
    assert check["status"] == "STARTING" and check["workers"] == []
    assert check["queue"] == {"waiting": 3, "processing": 0}
    health = client.get("/health").json()
    assert health["status"] == "healthy" and health["workers"] == 0

    metrics = client.get("/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert re.search(r'^avatar_jobs\{status="starting"\} 3(\.0)?$', text, re.M), text
    assert re.search(r'^avatar_jobs\{status="canceled"\} 1(\.0)?$', text, re.M), text
    assert re.search(r"^avatar_queue_depth 3(\.0)?$", text, re.M), text


# ============================================================================ face profiles (trainings)


def _face_photos() -> list[bytes]:
    """Three different photos of one face (scikit-image's astronaut): what a training accepts."""
    import io

    from PIL import Image
    from skimage import data

    face = Image.fromarray(data.astronaut())
    out = []
    for img in (face, face.transpose(Image.FLIP_LEFT_RIGHT), face.resize((420, 420))):
        buf = io.BytesIO()
        img.save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _photo_files(photos, field="photos"):
    return [(field, (f"p{i}.png", data, "image/png")) for i, data in enumerate(photos)]


BAD_TRAININGS = {
    "two photos": ({"name": "alice"}, 2, None),
    "not photos": ({"name": "alice"}, 3, b"plain text, not a photo" * 10),
    "no face": ({"name": "alice"}, 3, png_bytes((300, 300))),
    "bad name": ({"name": "../alice"}, 3, None),
    "steps 5": ({"name": "alice", "steps": "5"}, 3, None),
}


@pytest.mark.parametrize("form, count, data", BAD_TRAININGS.values(), ids=BAD_TRAININGS.keys())
def test_bad_training_is_refused_and_keeps_nothing(served, form, count, data):
    client, settings = served
    before = NothingWritten(client, settings)
    photos = [data] * count if data is not None else _face_photos()[:count] * (count // 3 + 1)
    body = assert_problem(client.post("/v1/trainings", data=form, files=_photo_files(photos[:count])), 422)
    assert body["detail"]
    before.check()
    assert files_under(settings.profiles_dir) == {}
    assert client.get("/v1/trainings").json()["results"] == []
    assert client.get("/training-status").json()["active_trainings"] == []


def test_training_idempotency_conflict_is_409_and_keeps_nothing(served):
    client, settings = served
    photos = _photo_files(_face_photos())
    first = client.post(
        "/v1/trainings", data={"name": "alice", "steps": "10"}, files=photos, headers={"Idempotency-Key": "train-1"}
    )
    assert first.status_code == 201, first.text
    assert first.json()["kind"] == "train" and first.json()["status"] == "starting"
    before = NothingWritten(client, settings)
    other = client.post(
        "/v1/trainings", data={"name": "bob", "steps": "10"}, files=photos, headers={"Idempotency-Key": "train-1"}
    )
    assert assert_problem(other, 409)["existing"] == first.json()["id"]
    before.check()
    assert [t["id"] for t in client.get("/v1/trainings").json()["results"]] == [first.json()["id"]]
    # Training the same name again while the first is queued is refused too.
    assert_problem(client.post("/v1/trainings", data={"name": "alice", "steps": "10"}, files=photos), 409)
    before.check()
    # A training is not a prediction, and unknown profiles are 404s.
    assert_problem(
        client.post(
            "/v1/trainings", data={"name": "carol", "steps": "10"}, files=photos, headers={"Idempotency-Key": "k" * 256}
        ),
        422,
    )
    before.check()
    # A canceled training is not retried through /v1/predictions (its input is not a clip's).
    training = first.json()["id"]
    assert client.post(f"/v1/trainings/{training}/cancel").json()["status"] == "canceled"
    assert_problem(client.post(f"/v1/predictions/{training}/retry"), 404)
    prediction = create_job(client)
    assert_problem(client.get(f"/v1/trainings/{prediction['id']}"), 404)
    assert_problem(client.post(f"/v1/trainings/{prediction['id']}/cancel"), 404)
    assert_problem(client.get("/v1/profiles/alice"), 404)
    assert_problem(client.get("/v1/profiles/alice/photo"), 404)
    assert_problem(client.delete("/v1/profiles/alice"), 404)
    assert_problem(client.get("/training-progress/nope"), 404)


# ============================================================================ 10. fuzzing: no 5xx

try:
    import schemathesis
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hyp_settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
except ImportError:  # the rest of the file still runs; the fuzz test reports itself skipped
    schemathesis = None

FUZZ_EXAMPLES = 25  # per operation and generation mode


@pytest.mark.skipif(schemathesis is None, reason="schemathesis is not installed (pip install -e '.[test]')")
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzz_no_server_errors(tmp_path, mode):
    """Schemathesis over every operation in the OpenAPI schema: schema-valid and schema-breaking requests
    alike may be refused (always as problem+json), but never with a 5xx. (Its pytest `from_fixture` loader
    breaks on pytest 9, so the operations are driven here with Hypothesis directly.)"""
    settings = make_settings(tmp_path)
    app = create_app(settings)
    with TestClient(app) as client:  # something to find: waiting and canceled jobs, an upload, an output
        create_job(client)
        gone = create_job(client, seed=3)
        client.post(f"/v1/predictions/{gone['id']}/cancel")
        upload(client, png_bytes())
        (settings.outputs_dir / "x.mp4").write_bytes(bytes(64))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    generation = schemathesis.GenerationMode.POSITIVE if mode == "positive" else schemathesis.GenerationMode.NEGATIVE
    failures, tried = [], 0
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            tried += 1

            @hyp_settings(
                max_examples=FUZZ_EXAMPLES,
                derandomize=True,
                deadline=None,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=generation))
            def check(case):
                # `Prefer: wait` legitimately blocks for up to a minute on a job no worker will run.
                for key in list(case.headers or {}):
                    if key.lower() == "prefer":
                        del case.headers[key]
                response = case.call()
                case.validate_response(response, checks=[not_a_server_error])
                if response.status_code >= 400:  # every refusal is a problem document
                    content_type = (response.headers.get("content-type") or [""])[0]
                    assert content_type.startswith(PROBLEM), (response.status_code, content_type)

            try:
                check()
            except Unsatisfiable:
                # Negative mode: nothing here can break the schema (no parameters, or free-form strings only).
                assert mode == "negative", f"{operation.method.upper()} {operation.path}: no valid request found"
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure, report them together
                failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    finally:
        try:  # schemathesis keeps the app's lifespan (and its reaper thread) running otherwise
            from schemathesis.python.asgi import shutdown_lifespans

            shutdown_lifespans()
        except ImportError:
            pass
    assert tried >= 15
    assert not failures, "\n\n".join(failures)


# ============================================================================ 11. async routes await


def _api_routes(routes):
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)
        elif hasattr(route, "endpoint") and hasattr(route, "methods") and hasattr(route, "dependant"):
            yield route
        elif getattr(route, "routes", None):
            yield from _api_routes(route.routes)


def _awaits(fn) -> bool:
    tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    return any(isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)) for node in ast.walk(tree))


def test_every_async_route_awaits(tmp_path):
    app = create_app(make_settings(tmp_path))
    routes = list(_api_routes(app.router.routes))
    schema_ops = {(path, m.upper()) for path, item in app.openapi()["paths"].items() for m in item}
    found = {(r.path, m) for r in routes for m in r.methods if m != "HEAD"}
    assert schema_ops <= found, schema_ops - found  # the walk saw every documented operation
    coroutines = [r for r in routes if inspect.iscoroutinefunction(r.endpoint)]
    assert coroutines, "expected some async endpoints (create/get/stream prediction)"
    blocking = [f"{r.path} {r.endpoint.__qualname__}" for r in coroutines if not _awaits(r.endpoint)]
    assert not blocking, f"async def endpoints that never await (they block the event loop): {blocking}"


def test_the_await_check_catches_a_blocking_route():
    async def blocking():
        return sum(range(10))

    async def streaming():
        async def gen():
            async for x in other():
                yield x

        return gen

    async def other():
        yield 1

    assert not _awaits(blocking) and _awaits(streaming)


# ============================================================================ 12. no torch in the API process


def test_api_process_never_imports_torch(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from fastapi.testclient import TestClient
        from ltx2.api.app import create_app
        from ltx2.settings import Settings

        tmp = Path({str(tmp_path)!r})
        app = create_app(Settings(outputs_dir=tmp / "out", temp_dir=tmp / "tmp", api_keys=[], database_url=None,
                                  public_url="http://testserver", models_dir=Path({str(PROJECT_ROOT / "models")!r})))
        import io
        from PIL import Image
        buf = io.BytesIO()
        Image.new("RGB", (300, 300), (90, 90, 90)).save(buf, "PNG")
        png = buf.getvalue()
        with TestClient(app) as client:
            assert client.get("/health").status_code == 200
            job = client.post("/v1/predictions", json={{"input": {{"text": "Hello there."}}}})
            assert job.status_code == 201, job.text
            long = " ".join(["w"] * 2500)  # ~1000 s of speech: over the script maximum
            assert client.post("/v1/predictions", json={{"input": {{"text": long}}}}).status_code == 422
            assert client.post("/v1/files", files={{"file": ("a.txt", b"text", "text/plain")}}).status_code == 415
            assert client.get("/metrics").status_code == 200
            assert client.post("/generate", data={{"text": "Hi there."}}).status_code == 200
            assert client.get("/v1/predictions").status_code == 200
            photos = [("photos", (f"p{{i}}.png", png, "image/png")) for i in range(3)]
            assert client.post("/v1/trainings", data={{"name": "x"}}, files=photos).status_code == 422
            assert client.get("/training-status").status_code == 200
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "ltx_core"))
        print("HEAVY", heavy)
        sys.exit(1 if heavy else 0)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


def test_a_5000_character_run_on_sentence_is_taken_as_a_script(served):
    client, settings = served
    text = " ".join(["extraordinarily"] * 313)[:5000]  # no punctuation at all: it is cut at words into clips
    assert len(text) == 5000
    response = client.post("/v1/predictions", json={"input": {"text": text}})
    assert response.status_code == 201, response.text
    assert response.json()["input"]["text"] == text


def test_script_limits_and_derived_jobs_are_checked_before_anything_is_queued(served):
    client, settings = served
    before = NothingWritten(client, settings)
    body = assert_problem(
        client.post("/v1/predictions", json={"input": {"text": OK_TEXT, "captions": ["srt"], "seconds": 2}}), 422
    )
    assert "seconds" in body["detail"]
    assert_problem(client.post("/v1/predictions", json={"input": {"text": OK_TEXT, "captions": ["ass"]}}), 422)
    assert_problem(client.post("/v1/predictions/missing/segments/1/retake"), 404)
    assert_problem(client.post("/v1/predictions/missing/finalize"), 404)
    before.check()
    queued = client.post("/v1/predictions", json={"input": {"text": OK_TEXT}}).json()
    body = assert_problem(client.post(f"/v1/predictions/{queued['id']}/finalize"), 409)
    assert "starting" in body["detail"]
    body = assert_problem(client.post(f"/v1/predictions/{queued['id']}/segments/1/retake"), 409)


def test_limits_tell_clients_how_this_server_plans(served):
    client, settings = served
    limits = client.get("/v1/limits").json()
    assert limits["max_script_seconds"] == 300 and limits["max_seconds"] == settings.max_seconds
    assert limits["segment_seconds"] == settings.segment_seconds and limits["max_text_chars"] == 5000
    # The fixed bounds come from the one limits module, and the server enforces what it publishes.
    assert (limits["min_speed"], limits["max_speed"], limits["max_side"], limits["side_multiple"]) == (
        0.5,
        2.0,
        2048,
        64,
    )
    over = {"text": OK_TEXT, "speed": limits["max_speed"] + 0.1, "width": limits["max_side"] + limits["side_multiple"]}
    body = assert_problem(client.post("/v1/predictions", json={"input": over}), 422)
    assert {tuple(e["loc"][-1:]) for e in body["errors"]} == {("speed",), ("width",)}


def test_clip_seconds_follow_the_configured_max_seconds(tmp_path):
    # Bug: GenerateInput had `seconds le=20` whatever AVATAR_MAX_SECONDS said: a server set to 10 s took 15 s
    # clips (and failed them in the worker), and one set to 30 s refused 25 s ones.
    with api(tmp_path / "short", max_seconds=10) as (client, settings):
        before = NothingWritten(client, settings)
        body = assert_problem(client.post("/v1/predictions", json={"input": {"text": OK_TEXT, "seconds": 15}}), 422)
        assert "input.seconds" in body["detail"] and "10" in body["detail"]
        before.check()
        assert client.get("/v1/limits").json()["max_seconds"] == 10
        assert client.post("/v1/predictions", json={"input": {"text": OK_TEXT, "seconds": 10}}).status_code == 201
    with api(tmp_path / "long", max_seconds=30) as (client, _):
        assert client.post("/v1/predictions", json={"input": {"text": OK_TEXT, "seconds": 25}}).status_code == 201
