"""The job server end to end: real uvicorn, real worker processes, the tiny checkpoint.

Every test runs twice: on the default SQLite file and on a real PostgreSQL server (tests/pg.py).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ltx2.media import probe
from ltx2.store.webhooks import verify
from tests.live_server import LiveServer
from tests.pg import server_env

pytestmark = pytest.mark.slow
QUICK = {"width": 64, "height": 64, "seconds": 0.4}
# Long enough to cancel or kill mid-way on the tiny checkpoint (guided steps at 256x256).
LONG = {"width": 256, "height": 256, "seconds": 1.5, "mode": "two-stage", "steps": 100}


@pytest.fixture(scope="module")
def server(tmp_path_factory, module_db_url):
    # The webhook test's receiver listens on a loopback port: local receivers must be allow-listed.
    env = {**server_env(module_db_url), "AVATAR_FETCH_ALLOW": '["127.0.0.1"]'}
    with LiveServer(tmp_path_factory.mktemp("live"), env=env) as live:
        yield live


def create(server, **input_) -> dict:
    response = server.client.post("/v1/predictions", json={"input": {"text": "Hello there.", **input_}})
    assert response.status_code == 201, response.text
    return response.json()


def test_seed_flow_generate_status_download(server, face_photo, tmp_path):
    with face_photo.open("rb") as f:
        response = server.client.post(
            "/generate",
            data={"text": "Hello there, welcome to the studio."},
            files={"reference_image": ("me.png", f, "image/png")},
        )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "queued" and body["job_id"]

    def finished():
        status = server.client.get(f"/status/{body['job_id']}").json()
        return status if status["status"] in ("completed", "failed", "cancelled") else None

    status = server.wait_for(finished, 180, "the seed job")
    assert status["status"] == "completed", status
    assert status["video_path"].endswith(".mp4")
    video = server.client.get(f"/download/{status['video_path'].rsplit('/', 1)[-1]}")
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    path = tmp_path / "seed.mp4"
    path.write_bytes(video.content)
    info = probe(path)
    # Seed defaults: 768x512, playback speed 1.25 → 24 fps retimed to 30 fps, every frame kept.
    assert (info.width, info.height, info.fps, info.frames) == (768, 512, 30.0, 73)
    assert info.has_audio and info.audio_duration == pytest.approx(73 / 30, abs=0.1)


def test_v1_flow_with_server_sent_events(server, tmp_path):
    job = create(server, **QUICK, speed=1.0)
    events = []
    # format=documents: the whole job document on every change (the default is Replicate's events).
    stream_url = job["urls"]["stream"].replace(server.url, "") + "&format=documents"
    with server.client.stream("GET", stream_url) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    assert events[-1][0] == "completed" and events[-1][1]["status"] == "succeeded"
    percents = [doc["progress"]["percent"] for _, doc in events]
    assert percents == sorted(percents) and percents[-1] == 100.0
    assert any(doc["status"] == "processing" for _, doc in events)
    out = events[-1][1]["output"]
    video = server.client.get(out["video_url"].replace(server.url, ""))
    path = tmp_path / "v1.mp4"
    path.write_bytes(video.content)
    info = probe(path)
    assert (info.width, info.height, info.frames, info.fps) == (64, 64, 17, 24.0) and info.has_audio
    # Range requests work for players and for resumable pulls.
    part = server.client.get(out["video_url"].replace(server.url, ""), headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100


def test_progress_covers_decode_and_encode_with_elapsed_and_eta_in_v1_and_status(server):
    # 121 frames: the VAE decodes three chunks. The first job measures the phases; the second, alike, gets an ETA.
    alike = {"width": 64, "height": 64, "seconds": 5.0}
    first = server.wait_status(create(server, **alike)["id"], ("succeeded", "failed"), timeout=300)
    assert first["status"] == "succeeded", first
    done = first["progress"]
    assert {"stage 1", "stage 2", "audio", "decode", "encode"} <= set(done["phase_seconds"])
    assert done["frames_decoded"] == done["frames_encoded"] == done["frames_total"] == 121
    assert done["percent"] == 100.0 and done["eta_s"] == 0.0 and done["elapsed_s"] > 0

    job = create(server, **alike)
    samples = []
    while True:
        before = server.client.get(f"/status/{job['id']}").json()
        doc = server.client.get(f"/v1/predictions/{job['id']}").json()
        after = server.client.get(f"/status/{job['id']}").json()
        samples.append((before, doc, after))
        if doc["status"] in ("succeeded", "failed", "canceled"):
            break
        time.sleep(0.05)
    assert doc["status"] == "succeeded", doc
    running = [(b, d, a) for b, d, a in samples if d["status"] == "processing" and d["progress"].get("elapsed_s")]
    assert running, "no progress was seen while the job ran"
    percents = [d["progress"]["percent"] for _, d, _ in samples]
    assert percents == sorted(percents)
    # From the first job's measured length, an ETA from the start; both documents carry the same numbers.
    assert all(d["progress"]["eta_s"] is not None for _, d, _ in running)
    for before, d, after in running:
        if before == after:  # the row did not change between the three reads
            p = d["progress"]
            assert (after["phase"], after["percent"], after["elapsed_s"], after["eta_s"]) == (
                p["phase"],
                p["percent"],
                p["elapsed_s"],
                p["eta_s"],
            )
            assert (after["step"], after["total_steps"]) == (p["step"], p["total_steps"])


def test_prefer_wait_returns_the_finished_job(server):
    response = server.client.post(
        "/v1/predictions", json={"input": {"text": "Quick one.", **QUICK}}, headers={"Prefer": "wait=60"}, timeout=90
    )
    assert response.status_code == 201
    doc = response.json()
    assert doc["status"] == "succeeded" and doc["metrics"]["predict_time"] > 0


def test_cancel_while_processing_stops_within_a_step_and_worker_moves_on(server):
    job = create(server, **LONG)
    server.wait_for(
        lambda: server.client.get(f"/v1/predictions/{job['id']}").json()["progress"]["step"] >= 2,
        120,
        "the long job to run a few steps",
    )
    server.client.post(f"/v1/predictions/{job['id']}/cancel")
    doc = server.wait_status(job["id"], ("canceled", "failed", "succeeded"), timeout=30)
    assert doc["status"] == "canceled"
    assert doc["progress"]["step"] < doc["progress"]["total_steps"]
    assert doc["output"] is None
    follow_up = create(server, **QUICK)
    assert server.wait_status(follow_up["id"], ("succeeded", "failed"))["status"] == "succeeded"


def test_a_job_that_fails_in_the_worker_does_not_stop_it(server, face_photo):
    with face_photo.open("rb") as f:
        upload = server.client.post("/v1/files", files={"file": ("me.png", f, "image/png")}).json()
    # The file disappears between upload and run: the worker must fail this job cleanly.
    for path in (server.root / "outputs" / ".state" / "uploads").iterdir():
        path.unlink()
    job = create(server, image=upload["id"], **QUICK)
    doc = server.wait_status(job["id"], ("succeeded", "failed"))
    assert doc["status"] == "failed" and doc["error_code"] == "invalid_input"
    assert "no longer exists" in doc["error"]
    follow_up = create(server, **QUICK)
    assert server.wait_status(follow_up["id"], ("succeeded", "failed"))["status"] == "succeeded"


class _Receiver(BaseHTTPRequestHandler):
    received: list = []
    fail_first = 0

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append((dict(self.headers), body))
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(500)
        else:
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_webhooks_are_signed_and_a_failing_receiver_is_retried(server):
    _Receiver.received, _Receiver.fail_first = [], 1
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
        response = server.client.post(
            "/v1/predictions",
            json={
                "input": {"text": "Webhook please.", **QUICK},
                "webhook": url,
                "webhook_events_filter": ["completed"],
            },
        )
        job = response.json()
        server.wait_status(job["id"], ("succeeded",))
        deadline = time.monotonic() + 20
        while len(_Receiver.received) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        receiver.shutdown()
    assert len(_Receiver.received) == 2, "one failed delivery, then the retry"
    secret = (server.root / "outputs" / ".state" / "webhook_secret").read_text().strip()
    (h1, b1), (h2, b2) = _Receiver.received
    assert h1["webhook-id"] == h2["webhook-id"]  # the same message, retried
    for headers, body in _Receiver.received:
        assert verify(secret, headers, body)
        doc = json.loads(body)
        assert doc["id"] == job["id"] and doc["status"] == "succeeded"
        assert doc["output"]["video_url"].partition("?")[0].endswith(".mp4")


def test_metrics_and_health_check_show_the_worker(server):
    check = server.health_check()
    assert check["status"] in ("READY", "BUSY")
    assert check["workers"][0]["model"]["tiny"] is True
    metrics = server.client.get("/metrics").text
    assert 'avatar_jobs{status="succeeded"}' in metrics and "avatar_queue_depth" in metrics
    listed = server.client.get("/v1/workers").json()
    (alive,) = [w for w in listed["workers"] if w["alive"]]
    assert listed["alive"] == 1 and alive["id"] == check["workers"][0]["id"] and alive["model"]["tiny"] is True
    assert alive["state"] in ("ready", "busy") and alive["device"] == "cpu" and alive["pid"] > 0


def test_kill_9_worker_mid_job_is_recovered_and_worker_restarted(tmp_path, db_url):
    with LiveServer(tmp_path / "kill", env={"AVATAR_STALE_AFTER_S": "3", **server_env(db_url)}) as live:
        # Long enough to be killed mid-way, short enough that the requeued rerun finishes on a busy machine.
        job = create(live, **{**LONG, "steps": 30})
        live.wait_for(
            lambda: live.client.get(f"/v1/predictions/{job['id']}").json()["status"] == "processing",
            60,
            "the job to start",
        )
        (victim,) = live.worker_pids()
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()

        def recovered():
            doc = live.client.get(f"/v1/predictions/{job['id']}").json()
            return doc if doc["attempt"] >= 2 or doc["status"] == "failed" else None

        doc = live.wait_for(recovered, 30, "the reaper to requeue or fail the job")
        assert time.monotonic() - killed_at < 30
        assert doc["status"] in ("starting", "processing", "succeeded") or doc["error_code"] == "worker_lost"
        live.wait_for(lambda: [p for p in live.worker_pids() if p != victim], 60, "the restarted worker")
        # Requeued once: the restarted worker finishes it.
        assert live.wait_status(job["id"], ("succeeded", "failed"), timeout=400)["status"] == "succeeded"
        follow_up = create(live, **QUICK)
        assert live.wait_status(follow_up["id"], ("succeeded", "failed"))["status"] == "succeeded"


def test_restart_keeps_jobs_files_and_outputs_and_runs_queued_work(tmp_path, face_photo, db_url):
    root = tmp_path / "restart"
    env = server_env(db_url)
    with LiveServer(root, env=env) as first:
        done = create(first, **QUICK)
        first.wait_status(done["id"], ("succeeded",))
        with face_photo.open("rb") as f:
            upload = first.client.post("/v1/files", files={"file": ("me.png", f, "image/png")}).json()
    with LiveServer(root, workers=0, env=env) as idle:  # no worker: this job can only wait
        queued = create(idle, **QUICK)
        assert idle.client.get(f"/v1/predictions/{queued['id']}").json()["queue_position"] == 1
    with LiveServer(root, env=env) as second:
        assert second.client.get(f"/v1/predictions/{done['id']}").json()["status"] == "succeeded"
        assert second.client.get(f"/v1/files/{upload['id']}/content").content == first_bytes(root, upload)
        assert second.client.get(f"/download/{done['id']}.mp4").status_code == 200
        assert second.wait_status(queued["id"], ("succeeded", "failed"))["status"] == "succeeded"


def first_bytes(root, upload) -> bytes:
    uploads = root / "outputs" / ".state" / "uploads"
    (path,) = [p for p in uploads.iterdir() if p.is_file()]
    return path.read_bytes()


def test_pull_downloads_finished_videos_once_and_resumes(server, tmp_path):
    from ltx2.pull import pull_all

    job = create(server, **QUICK)
    server.wait_status(job["id"], ("succeeded",))
    dest = tmp_path / "pulled"
    first = pull_all(server.url, dest, echo=lambda _: None)
    videos = sorted(dest.glob("*.mp4"))
    assert first.failed == 0 and first.downloaded >= 3 and videos
    for video in videos:
        assert (server.root / "outputs" / video.name).read_bytes() == video.read_bytes()
    again = pull_all(server.url, dest, echo=lambda _: None)
    assert again.downloaded == 0 and again.present == first.downloaded
    # An interrupted download: the first half sits in a .part file and is resumed with a Range request.
    target = dest / f"{job['id']}.mp4"
    whole = target.read_bytes()
    target.unlink()
    (dest / f"{target.name}.part").write_bytes(whole[: len(whole) // 2])
    resumed = pull_all(server.url, dest, echo=lambda _: None)
    assert resumed.downloaded == 1 and target.read_bytes() == whole
    # A corrupt partial file is detected by the recorded sha256 and discarded, never renamed into place.
    target.unlink()
    (dest / f"{target.name}.part").write_bytes(b"garbage" * 10)
    broken = pull_all(server.url, dest, echo=lambda _: None)
    assert broken.failed == 1 and not target.exists() and not (dest / f"{target.name}.part").exists()
    assert pull_all(server.url, dest, echo=lambda _: None).downloaded == 1 and target.read_bytes() == whole
