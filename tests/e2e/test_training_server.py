"""Face profiles through the server: upload photos in one request, watch a real loss fall, generate with it."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageOps

from tests.live_server import LiveServer

pytestmark = pytest.mark.slow


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def photos() -> list[tuple[str, bytes]]:
    from skimage import data

    a = Image.fromarray(data.astronaut())
    return [
        ("front.png", _png(a)),
        ("mirror.png", _png(ImageOps.mirror(a))),
        ("bright.png", _png(ImageEnhance.Brightness(a).enhance(1.2))),
        ("tilted.png", _png(a.rotate(5, resample=Image.Resampling.BICUBIC))),
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("train")) as live:
        yield live


def _train(server, name, photos, steps):
    files = [("photos", (n, b, "image/png")) for n, b in photos]
    return server.client.post(
        "/v1/trainings", data={"name": name, "steps": str(steps), "rank": "4", "learning_rate": "0.01"}, files=files
    )


def test_train_profile_then_generate_with_it(server, photos):
    response = _train(server, "Ada", photos, 40)
    assert response.status_code == 201, response.text
    job = response.json()
    doc = server.wait_for(
        lambda: (
            (d := server.client.get(f"/v1/trainings/{job['id']}").json())["status"]
            in ("succeeded", "failed", "canceled")
            and d
        ),
        300,
        "the training",
    )
    assert doc["status"] == "succeeded", doc
    out = doc["output"]
    assert out["final_loss"] < out["first_loss"]  # a real loss, falling
    curve = doc["progress"]["curve"]
    assert len(curve) >= 10 and curve[-1][0] == 40
    profiles = server.client.get("/v1/profiles").json()["results"]
    assert [p["name"] for p in profiles] == ["Ada"]
    photo = server.client.get("/v1/profiles/Ada/photo")
    assert photo.headers["content-type"] == "image/png"
    # When training ended the worker made a preview: the first frame of a short clip with the LoRA and trigger
    # and no photo, so it is generated, not one of the photos.
    assert profiles[0]["preview_url"].endswith("/v1/profiles/Ada/preview")
    preview = server.client.get("/v1/profiles/Ada/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"
    frame = Image.open(io.BytesIO(preview.content)).convert("RGB")
    assert frame.size == (128, 128)
    best = Image.open(io.BytesIO(photo.content)).convert("RGB").resize(frame.size)
    assert np.abs(np.asarray(frame, np.float32) - np.asarray(best, np.float32)).mean() > 10
    assert "preview: 1 steps" in doc["logs"] and doc["progress"]["percent"] == 100.0
    progress = server.client.get(f"/training-progress/{job['id']}").json()
    assert progress["status"] == "completed" and "accuracy" not in progress and progress["loss"] is not None
    # Seed API: generate with the trained profile (LoRA + trigger + its best photo as reference).
    queued = server.client.post(
        "/generate", data={"text": "Hello from Ada.", "use_trained_profile": "true", "trained_person_name": "Ada"}
    ).json()
    done = server.wait_status(queued["job_id"], ("succeeded", "failed"), timeout=300)
    assert done["status"] == "succeeded", done
    assert done["input"]["profile"] == "Ada" and done["output"]["metadata"]["lora"] == "lora.safetensors"
    # A second profile of the same name is refused clearly.
    again = _train(server, "Ada", photos, 10)
    assert again.status_code == 409 and "already exists" in again.json()["detail"]


def test_bad_photos_are_named_and_nothing_is_kept(server, photos):
    before = {p.name for p in (server.root / "outputs" / ".state" / "uploads").glob("*")}
    response = _train(server, "Bad", [*photos[:2], ("notes.png", b"not a photo")], 10)
    assert response.status_code == 422
    problem = response.json()
    assert any(p["photo"] == "notes.png" for p in problem["problems"])
    assert {p.name for p in (server.root / "outputs" / ".state" / "uploads").glob("*")} == before


def test_cancel_mid_training_leaves_no_profile(server, photos):
    job = _train(server, "Brief", photos, 2000).json()
    server.wait_for(
        lambda: (
            server.client.get(f"/v1/trainings/{job['id']}").json()["progress"]["step"] >= 2
            and server.client.get(f"/v1/trainings/{job['id']}").json()["progress"]["phase"] == "train"
        ),
        300,
        "training steps",
    )
    server.client.post(f"/v1/trainings/{job['id']}/cancel")
    doc = server.wait_status(job["id"], ("canceled", "failed", "succeeded"), timeout=60)
    assert doc["status"] == "canceled"
    assert server.client.get("/v1/profiles/Brief").status_code == 404
    leftovers = [
        p.name
        for p in (server.root / "outputs" / ".state" / "profiles").iterdir()
        if "Brief" in p.name or p.name.startswith(".staging")
    ]
    assert leftovers == []


def test_cli_train_refuses_bad_photos_with_their_names(tmp_path, photos):
    from typer.testing import CliRunner

    from ltx2.cli import app

    paths = []
    for name, data in [*photos[:2], ("notes.png", b"not a photo")]:
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    result = CliRunner().invoke(app, ["train", "--name", "X", *paths, "--out", str(tmp_path / "x.safetensors")])
    assert result.exit_code == 2 and "notes.png" in result.stderr
    assert not (tmp_path / "x.safetensors").exists()
