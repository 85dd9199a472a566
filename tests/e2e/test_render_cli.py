"""Whole clips as a user gets them: `avatar generate` and render() → MP4 probed with PyAV."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from ltx2.cli import app
from ltx2.domain.prompts import plan_clip
from ltx2.media import decode_frames, probe
from ltx2.render import ClipSpec, render
from ltx2.settings import PROJECT_ROOT, Settings
from tests.conftest import write_tone


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return Settings(models_dir=PROJECT_ROOT / "models", outputs_dir=tmp_path_factory.mktemp("out"))


def assert_clip(path, frames, fps, width, height):
    info = probe(path)
    assert info.has_video and info.has_audio
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height, info.frames) == (width, height, frames)
    assert info.fps == pytest.approx(fps, rel=1e-3)
    assert info.duration == pytest.approx(frames / fps, abs=1 / fps)
    # The sound lasts as long as the picture.
    assert info.audio_duration == pytest.approx(frames / fps, abs=1 / fps + 1024 / info.audio_rate)
    return info


@pytest.mark.parametrize("speed", [1.0, 1.25])
def test_render_text_clip_with_speed(engine, settings, tmp_path, speed):
    spec = ClipSpec(text="Hello there, welcome to the studio.", width=64, height=64, speed=speed)
    result = render(engine, spec, tmp_path / "clip.mp4", settings)
    frames = plan_clip(spec.text, fps=24, max_seconds=settings.max_seconds).num_frames
    info = assert_clip(result.video, frames, 24 * speed, 64, 64)
    assert info.metadata.get("avatar_model") == "tiny"
    meta = json.loads(result.metadata_path.read_text())
    assert meta["tiny_checkpoint"] is True and meta["num_frames"] == frames and meta["speed"] == speed
    assert result.thumbnail.read_bytes()[:2] == b"\xff\xd8"  # a JPEG


def test_render_audio_clip_takes_the_recordings_length(engine, settings, tmp_path, face_photo):
    voice = write_tone(tmp_path / "voice.wav", seconds=1.2, channels=1)
    spec = ClipSpec(text="My own voice.", audio=voice, image=face_photo, width=64, height=64, steps=2)
    result = render(engine, spec, tmp_path / "voice.mp4", settings)
    assert_clip(result.video, 33, 24, 64, 64)  # 1.2 s at 24 fps → 29 frames → next 8k+1 is 33
    assert result.metadata["pipeline"] == "A2VidPipelineTwoStage"


def test_render_same_seed_gives_same_frames(engine, settings, tmp_path):
    spec = ClipSpec(text="Same again.", width=128, height=128, seed=9)
    a = decode_frames(render(engine, spec, tmp_path / "a.mp4", settings).video).astype(float)
    b = decode_frames(render(engine, spec, tmp_path / "b.mp4", settings).video).astype(float)
    spec.seed = 10
    c = decode_frames(render(engine, spec, tmp_path / "c.mp4", settings).video).astype(float)
    # libx264 in the PyAV wheel is not always byte-repeatable, so compare decoded pixels, not file hashes.
    assert abs(a - b).mean() < 0.5
    assert abs(a - c).mean() > 5


def test_cli_generate_end_to_end(tmp_path):
    out = tmp_path / "a.mp4"
    env = {**os.environ, "AVATAR_MODELS_DIR": str(PROJECT_ROOT / "models")}
    env.pop("AVATAR_CHECKPOINT", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ltx2.cli",
            "generate",
            "--text",
            "Hello there, welcome to the studio.",
            "--width",
            "64",
            "--height",
            "64",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "TINY CHECKPOINT" in proc.stderr and "TINY CHECKPOINT" in proc.stdout
    assert f"wrote {out}" in proc.stdout
    assert_clip(out, 73, 24, 64, 64)
    assert out.with_suffix(".jpg").exists() and out.with_suffix(".json").exists()


def test_cli_script_file_gives_one_captioned_video(tmp_path):
    script = tmp_path / "talk.txt"
    script.write_text("Welcome to the studio. This is a short talk.\n\nIt has two paragraphs. Thanks!\n")
    out = tmp_path / "talk.mp4"
    env = {**os.environ, "AVATAR_MODELS_DIR": str(PROJECT_ROOT / "models"), "AVATAR_TEMP_DIR": str(tmp_path / "t")}
    env.pop("AVATAR_CHECKPOINT", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "ltx2.cli",
            "generate",
            "--script-file",
            str(script),
            "--captions",
            "srt,vtt",
            "--width",
            "64",
            "--height",
            "64",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2 segment(s):" in proc.stdout and "TINY CHECKPOINT" in proc.stdout
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["segments"] == 2 and meta["tiny_checkpoint"] is True
    info = probe(out)
    assert info.frames == meta["num_frames"] and info.has_audio
    srt = out.with_suffix(".srt").read_text()
    assert "Welcome to the studio." in srt and "Thanks!" in srt
    assert out.with_suffix(".vtt").read_text().startswith("WEBVTT")
    assert list((tmp_path / "t").iterdir()) == []  # the segment files were working files


def test_cli_script_needs_exactly_one_source_of_words(tmp_path):
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "x.mp4")])
    assert result.exit_code == 2 and "--script-file" in result.stderr
    result = CliRunner().invoke(
        app, ["generate", "--text", "Hi.", "--captions", "ass", "--out", str(tmp_path / "x.mp4")]
    )
    assert result.exit_code == 2 and "srt, vtt" in result.stderr


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--image", "/nonexistent/me.jpg"], "image file not found"),
        (["--audio", "/nonexistent/me.wav"], "audio file not found"),
        (["--width", "100"], "multiple of 64"),
        (["--speed", "3"], "playback speed"),
        (["--mode", "turbo"], "unknown mode"),
        (["--seconds", "500"], "seconds must lie"),
    ],
)
def test_cli_bad_input_exits_with_one_clear_line(tmp_path, args, fragment):
    out = tmp_path / "x.mp4"
    result = CliRunner().invoke(app, ["generate", "--text", "Hi.", "--out", str(out), *args])
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0]
    assert not out.exists()


def test_cli_rejects_non_image_and_too_long_text(tmp_path):
    fake = tmp_path / "photo.jpg"
    fake.write_text("not a photo")
    result = CliRunner().invoke(
        app, ["generate", "--text", "Hi.", "--image", str(fake), "--out", str(tmp_path / "x.mp4")]
    )
    assert result.exit_code == 2 and "not an image" in result.stderr
    long_text = "This sentence goes on and on. " * 400  # ~18 minutes of speech: over the script maximum
    result = CliRunner().invoke(app, ["generate", "--text", long_text, "--out", str(tmp_path / "y.mp4")])
    assert result.exit_code == 2 and "error:" in result.stderr
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "y.mp4").exists()
