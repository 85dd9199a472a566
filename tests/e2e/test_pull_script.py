"""scripts/avatar_pull.py: the laptop pull, run in a fresh venv without torch (or anything else installed)
against a real `avatar serve` on the tiny checkpoint with an API key."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ltx2.settings import PROJECT_ROOT
from tests.live_server import LiveServer

pytestmark = pytest.mark.slow
KEY = "pull-test-key"
SCRIPT = PROJECT_ROOT / "scripts" / "avatar_pull.py"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    live = LiveServer(tmp_path_factory.mktemp("pull-live"), env={"AVATAR_API_KEYS": f'["{KEY}"]'})
    live.client.headers["Authorization"] = f"Bearer {KEY}"
    with live:
        yield live


@pytest.fixture(scope="module")
def job(server) -> dict:
    """A finished captioned clip: video, thumbnail, metadata, SRT and VTT."""
    response = server.client.post(
        "/v1/predictions",
        json={
            "input": {
                "text": "Hello there. Welcome back.",
                "width": 64,
                "height": 64,
                "segment_seconds": 3.0,
                "captions": ["srt", "vtt"],
            }
        },
    )
    assert response.status_code == 201, response.text
    doc = server.wait_status(response.json()["id"], ("succeeded", "failed", "canceled"), timeout=300)
    assert doc["status"] == "succeeded", doc
    return doc


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A new venv with nothing installed: not torch, not httpx, not this project."""
    venv = tmp_path_factory.mktemp("laptop") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    missing = subprocess.run([str(python), "-c", "import torch"], capture_output=True, cwd=venv)
    assert missing.returncode != 0
    for module in ("httpx", "ltx2", "pydantic"):
        assert subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, cwd=venv).returncode
    return python


def pull(python: Path, server: LiveServer, dest: Path, key: str | None = KEY) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "AVATAR_"))}
    if key:
        env["AVATAR_API_KEY"] = key
    return subprocess.run(
        [str(python), str(SCRIPT), "--server", server.url, "--dest", str(dest)],
        capture_output=True,
        text=True,
        env=env,
        cwd=dest.parent,
        timeout=300,
    )


def served(server: LiveServer, link: str) -> bytes:
    response = server.client.get(link.replace(server.url, ""))
    assert response.status_code == 200
    return response.content


def expected_files(job: dict) -> dict[str, str]:
    out = job["output"]
    files = {out[k]: out[f"{k}_url"] for k in ("video", "thumbnail", "metadata_file")}
    files.update({out["captions"][fmt]: out["captions_urls"][fmt] for fmt in ("srt", "vtt")})
    return files


def test_pull_downloads_everything_then_nothing(bare_python, server, job, tmp_path):
    dest = tmp_path / "videos"
    first = pull(bare_python, server, dest)
    assert first.returncode == 0, first.stdout + first.stderr
    files = expected_files(job)
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)  # no .part left behind
    for name, link in files.items():
        assert (dest / name).read_bytes() == served(server, link), name
    video = dest / job["output"]["video"]
    assert hashlib.sha256(video.read_bytes()).hexdigest() == job["output"]["sha256"]
    assert "Welcome back" in (dest / job["output"]["captions"]["srt"]).read_text()
    assert (dest / job["output"]["captions"]["vtt"]).read_text().startswith("WEBVTT")
    assert "5 downloaded, 0 already present, 0 failed" in first.stdout

    stamps = {p.name: p.stat().st_mtime_ns for p in dest.iterdir()}
    second = pull(bare_python, server, dest)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "0 downloaded, 5 already present, 0 failed" in second.stdout
    assert {p.name: p.stat().st_mtime_ns for p in dest.iterdir()} == stamps


def test_interrupted_video_resumes_from_its_part_file(bare_python, server, job, tmp_path):
    dest = tmp_path / "videos"
    assert pull(bare_python, server, dest).returncode == 0
    video = dest / job["output"]["video"]
    data = video.read_bytes()
    video.unlink()
    half = len(data) // 2
    (dest / f"{video.name}.part").write_bytes(data[:half])

    run = pull(bare_python, server, dest)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"resumed at {half} bytes: {video.name}" in run.stdout
    assert hashlib.sha256(video.read_bytes()).hexdigest() == job["output"]["sha256"]
    assert not (dest / f"{video.name}.part").exists()
    assert "1 downloaded, 4 already present" in run.stdout


def test_corrupt_part_file_is_caught_by_sha256_and_fetched_again(bare_python, server, job, tmp_path):
    dest = tmp_path / "videos"
    assert pull(bare_python, server, dest).returncode == 0
    video = dest / job["output"]["video"]
    size = video.stat().st_size
    video.unlink()
    (dest / f"{video.name}.part").write_bytes(b"\0" * (size // 2))  # right length, wrong bytes

    run = pull(bare_python, server, dest)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sha256 mismatch" in run.stdout
    assert hashlib.sha256(video.read_bytes()).hexdigest() == job["output"]["sha256"]


def test_without_the_key_it_says_so_and_writes_nothing(bare_python, server, job, tmp_path):
    dest = tmp_path / "videos"
    run = pull(bare_python, server, dest, key=None)
    assert run.returncode == 2
    assert "API key" in run.stderr
    assert not dest.exists() or not any(dest.iterdir())


def test_a_whole_part_file_left_before_the_rename_is_checked_and_kept(bare_python, server, job, tmp_path):
    dest = tmp_path / "videos"
    assert pull(bare_python, server, dest).returncode == 0
    video = dest / job["output"]["video"]
    video.rename(dest / f"{video.name}.part")  # interrupted between the last byte and the rename

    run = pull(bare_python, server, dest)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"(already whole): {video.name}" in run.stdout  # the server said 416: nothing more to fetch
    assert hashlib.sha256(video.read_bytes()).hexdigest() == job["output"]["sha256"]
    assert not (dest / f"{video.name}.part").exists()
