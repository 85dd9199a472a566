"""The seed's clients, replayed: every documented request of the seed's API against a real `avatar serve` on the
tiny checkpoint, checking every field the seed documented (beside today's fields, which stay).

The seed's documented fields per route are SEED_FIELDS below. Along the way a face profile trained with the CLI
(`avatar train`, a few steps, into the server's own outputs folder) is used by name through the API and, as the
only profile, by the seed's `use_trained_profile=true` without a name.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys

import pytest
from PIL import Image, ImageEnhance, ImageOps

from ltx2.domain.inputs import trigger_for
from ltx2.settings import PROJECT_ROOT
from tests.live_server import LiveServer
from tests.pace import scaled

pytestmark = pytest.mark.slow

# What the seed's clients read, route by route (the seed's names; today's richer fields sit beside them).
SEED_FIELDS = {
    "POST /generate": {"job_id", "status"},
    "GET /status/{job_id}": {"job_id", "status", "progress", "message", "video_path", "download_url", "error"},
    "POST /train-face": {"job_id", "status", "person_name", "message"},
    "GET /training-status": {
        "has_training",
        "person_name",
        "current_step",
        "training_steps",
        "progress",
        "status",
        "trained_people",
        "profiles",
        "active_trainings",
        "is_training",
    },
    "GET /training-progress/{job_id}": {"job_id", "status", "progress", "current_step", "training_steps"},
    "GET /workspace-status": {"reference_images", "cached_videos", "temp_files"},
    "POST /clean-workspace": {"status", "deleted_count"},
    "POST /master-reset": {"status"},
    "GET /health": {"status"},
}
CHECKED: set[str] = set()  # routes whose documented fields a test has checked (the last test asserts all)


def seed_answer(route: str, response) -> dict:
    assert response.status_code == 200, f"{route}: {response.status_code} {response.text}"
    body = response.json()
    missing = SEED_FIELDS[route] - body.keys()
    assert not missing, f"{route} lacks the seed's fields {sorted(missing)}: {body}"
    CHECKED.add(route)
    return body


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list:
    from skimage import data

    a = Image.fromarray(data.astronaut())
    folder = tmp_path_factory.mktemp("faces")
    variants = {
        "front.png": a,
        "mirror.png": ImageOps.mirror(a),
        "bright.png": ImageEnhance.Brightness(a).enhance(1.2),
        "tilted.png": a.rotate(5, resample=Image.Resampling.BICUBIC),
    }
    paths = []
    for name, img in variants.items():
        (folder / name).write_bytes(_png(img))
        paths.append(folder / name)
    return paths


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("seed-replay")) as live:
        yield live


def wait_seed_status(server, job_id: str, timeout: float = 300) -> dict:
    def finished():
        body = server.client.get(f"/status/{job_id}").json()
        return body if body["status"] in ("completed", "failed", "cancelled") else None

    return server.wait_for(finished, timeout, f"seed job {job_id}")


def test_health_and_health_check_name_the_weights(server):
    seed_answer("GET /health", server.client.get("/health"))
    check = server.client.get("/health-check").json()
    assert check["weights"] == "tiny" and "tiny test checkpoint" in check["weights_note"]
    (worker,) = [w for w in check["workers"] if w["alive"]]
    assert worker["model"]["weights_source"] == "tiny"  # what the worker itself loaded


def test_training_status_before_any_training_and_use_trained_profile_without_one(server):
    body = seed_answer("GET /training-status", server.client.get("/training-status"))
    assert body["has_training"] is False and body["status"] == "idle" and body["person_name"] is None
    assert body["current_accuracy"] is None  # the seed's invented figure has no honest value
    refused = server.client.post("/generate", data={"text": "Hello.", "use_trained_profile": "true"})
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    assert "no trained face profile" in refused.json()["detail"]
    assert server.client.get("/v1/predictions").json()["results"] == []  # nothing was queued


def test_a_cli_trained_profile_is_a_server_profile(server, photos):
    env = {**server.env, "AVATAR_CPU_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "ltx2.cli", "train", "--name", "Cli Ada", "--steps", "10", "--rank", "4", "--lr", "0.01"]
        + [str(p) for p in photos],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=scaled(600),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "avatar generate --profile" in run.stdout
    profile = server.client.get("/v1/profiles/Cli Ada").json()
    assert profile["trigger"] == trigger_for("Cli Ada") and profile["photos"] == 4 and profile["steps"] == 10
    assert profile["training_job"] is None  # trained by the CLI, not by a server job
    assert server.client.get("/v1/profiles/Cli Ada/photo").headers["content-type"] == "image/png"
    status = seed_answer("GET /training-status", server.client.get("/training-status"))
    assert status["has_training"] is True and status["person_name"] == "Cli Ada" and status["status"] == "completed"
    assert status["current_step"] == status["training_steps"] == 10 and status["trained_people"] == ["Cli Ada"]

    # By name through /v1: the LoRA is fused and the trigger word reaches the prompt.
    created = server.client.post(
        "/v1/predictions",
        json={"input": {"text": "Hello from the CLI.", "profile": "Cli Ada", "width": 64, "height": 64}},
    )
    assert created.status_code == 201, created.text
    done = server.wait_status(created.json()["id"], ("succeeded", "failed"), timeout=300)
    assert done["status"] == "succeeded", done
    meta = done["output"]["metadata"]
    assert meta["lora"] == "lora.safetensors" and trigger_for("Cli Ada") in meta["prompt"]


def test_avatar_generate_with_profile_puts_the_trigger_word_in_the_prompt(server, tmp_path):
    import json

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "ltx2.cli", "generate", *args],
            env=server.env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=scaled(600),
        )

    out = tmp_path / "cli.mp4"
    run = cli("--profile", "Cli Ada", "--text", "Hi there.", "--width", "64", "--height", "64", "--out", str(out))
    assert run.returncode == 0, run.stderr[-3000:]
    meta = json.loads(out.with_suffix(".json").read_text())
    assert trigger_for("Cli Ada") in meta["prompt"] and meta["lora"] == "lora.safetensors"
    refused = cli("--trigger", "ohwxsomeone", "--text", "Hi.", "--out", str(tmp_path / "x.mp4"))
    assert refused.returncode == 2 and "give the --lora too" in refused.stderr
    unknown = cli("--profile", "Nobody", "--text", "Hi.", "--out", str(tmp_path / "y.mp4"))
    assert unknown.returncode == 2 and "no face profile 'Nobody'" in unknown.stderr


def test_seed_generate_with_the_only_profile_says_which(server):
    answer = seed_answer(
        "POST /generate", server.client.post("/generate", data={"text": "Hi.", "use_trained_profile": "true"})
    )
    assert answer["status"] == "queued" and answer["profile"] == "Cli Ada" and "Cli Ada" in answer["message"]
    wait_seed_status(server, answer["job_id"])
    status = seed_answer("GET /status/{job_id}", server.client.get(f"/status/{answer['job_id']}"))
    assert status["status"] == "completed" and status["progress"] == 100 and status["error"] is None
    assert status["video_path"] == f"outputs/{status['download_url'].rsplit('/', 1)[-1]}"
    video = server.client.get(f"/download/{status['download_url'].rsplit('/', 1)[-1]}")
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    doc = server.client.get(f"/v1/predictions/{answer['job_id']}").json()
    assert doc["input"]["profile"] == "Cli Ada" and trigger_for("Cli Ada") in doc["output"]["metadata"]["prompt"]


def test_train_face_and_its_progress_in_the_seed_shapes(server, photos):
    files = [("training_photos", (p.name, p.read_bytes(), "image/png")) for p in photos]
    started = seed_answer(
        "POST /train-face",
        server.client.post("/train-face", data={"person_name": "Grace", "training_steps": "100"}, files=files),
    )
    assert started["status"] == "training_started" and started["person_name"] == "Grace"
    job_id = started["job_id"]

    def training():
        body = server.client.get("/training-status").json()
        return body if body["status"] == "processing" and body["current_step"] >= 1 else None

    running = server.wait_for(training, 300, "the training to take steps")
    seed_answer("GET /training-status", server.client.get("/training-status"))
    assert running["has_training"] and running["is_training"] and running["person_name"] == "Grace"
    assert running["job_id"] == job_id and running["training_steps"] == 100 and 0 < running["progress"] < 100
    progress = seed_answer("GET /training-progress/{job_id}", server.client.get(f"/training-progress/{job_id}"))
    assert progress["training_steps"] == 100 and progress["status"] == "processing"
    assert progress["total_steps"] and "accuracy" not in progress
    # Stop it (a 100-step run is the seed's minimum, longer than this test needs): the seed calls it cancelled.
    server.client.post(f"/v1/trainings/{job_id}/cancel")
    server.wait_status(job_id, ("canceled",), timeout=120)
    after = server.client.get("/training-status").json()
    assert after["job_id"] == job_id and after["status"] == "cancelled" and not after["is_training"]
    assert after["trained_people"] == ["Cli Ada"]  # a canceled training leaves no profile


def test_workspace_status_and_clean_in_the_seed_shapes(server):
    ws = seed_answer("GET /workspace-status", server.client.get("/workspace-status"))
    assert ws["cached_videos"] == ws["videos"] == 2  # the /v1 clip and the seed clip
    assert ws["reference_images"] >= 4  # Grace's training photos are kept with her (canceled) job
    (server.root / "temp" / "leftover.bin").write_bytes(b"x" * 10)
    ws = server.client.get("/workspace-status").json()
    assert ws["temp_files"] >= 1
    cleaned = seed_answer("POST /clean-workspace", server.client.post("/clean-workspace"))
    assert cleaned["status"] == "success" and cleaned["deleted_count"] >= 1
    assert not (server.root / "temp" / "leftover.bin").exists()
    assert server.client.get("/workspace-status").json()["cached_videos"] == 2  # videos only with include_outputs


def test_a_deleted_video_is_restorable_from_the_trash(server):
    clip = next(j for j in server.client.get("/v1/predictions").json()["results"] if j["status"] == "succeeded")
    video = server.root / "outputs" / clip["output"]["video"]
    digest = hashlib.sha256(video.read_bytes()).hexdigest()
    assert server.client.delete(f"/v1/predictions/{clip['id']}").status_code == 204
    assert not video.exists() and server.client.get(f"/v1/predictions/{clip['id']}").status_code == 404
    (entry,) = [e for e in server.client.get("/v1/trash").json()["results"] if e["id"] == clip["id"]]
    assert clip["output"]["video"] in entry["files"] and entry["expires_at"] > entry["deleted_at"]
    assert server.client.get("/workspace-status").json()["trash"] == 1
    restored = server.client.post(f"/v1/trash/{clip['id']}/restore")
    assert restored.status_code == 200 and restored.json()["id"] == clip["id"]
    assert hashlib.sha256(video.read_bytes()).hexdigest() == digest
    download = server.client.get(f"/download/{clip['output']['video']}")
    assert hashlib.sha256(download.content).hexdigest() == digest
    assert server.client.get("/v1/trash").json()["results"] == []
    again = server.client.post(f"/v1/trash/{clip['id']}/restore")
    assert again.status_code == 404 and again.headers["content-type"].startswith("application/problem+json")


def test_master_reset_in_the_seed_shape_and_every_route_was_replayed(server):
    reset = seed_answer("POST /master-reset", server.client.post("/master-reset", data={"confirm": "RESET"}))
    assert reset["status"] == "reset"
    assert server.client.get("/training-status").json()["has_training"] is False
    assert CHECKED == set(SEED_FIELDS), f"not replayed: {sorted(set(SEED_FIELDS) - CHECKED)}"
