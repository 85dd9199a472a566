"""A GPU host uses the weights `avatar models download` verified, without AVATAR_CHECKPOINT: the download
records them in models/verified.json, Settings picks them up, and scripts/launch_ltx2.sh says which set it runs.

The "real" weights here are small fake files in a temp models folder that pass `verify` (valid safetensors
headers, valid JSON, every shard the index names): the real ones cannot be downloaded on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from ltx2.doctor import run_doctor
from ltx2.settings import PROJECT_ROOT, Settings
from ltx2.weights import WeightsDownloadError, download, download_plan, resolved_weights, verify, weights_banner

DEAD_ENDPOINT = "http://127.0.0.1:9"  # loopback, closed: proves nothing is fetched


def settings_for(models: Path, **kw) -> Settings:
    return Settings(_env_file=None, models_dir=models, outputs_dir=models.parent / "outputs", **kw)


@pytest.fixture
def models(tmp_path, monkeypatch) -> Path:
    """Every file of the download plan, small but valid."""
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.delenv("AVATAR_CHECKPOINT", raising=False)
    root = tmp_path / "models"
    shards = []
    for entry in download_plan(settings_for(root)):
        if not entry.required:
            continue
        path = root / entry.local
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".safetensors":
            save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(path))
            shards.append(path.name)
        elif path.suffix == ".json":
            path.write_text("{}")
        else:
            path.write_bytes(b"fake sentencepiece model")
    index = next(p for p in root.rglob("model.safetensors.index.json"))
    weight_map = {f"layer{i}": name for i, name in enumerate(shards) if name.startswith("model")}
    index.write_text(json.dumps({"weight_map": weight_map}))
    return root


def test_download_records_the_verified_set_and_settings_use_it(models):
    before = settings_for(models)
    assert before.weights_source == "tiny" and before.uses_tiny  # nothing recorded yet

    download(before, progress=False)  # everything present and valid: no network, just the record
    record = json.loads((models / "verified.json").read_text())
    assert Path(record["checkpoint"]) == models / "ltx-2-19b-distilled-fp8.safetensors"

    after = settings_for(models)
    assert after.weights_source == "verified" and not after.uses_tiny
    assert after.checkpoint == models / "ltx-2-19b-distilled-fp8.safetensors"
    assert after.gemma_root.is_dir()
    weights = resolved_weights(after)
    assert not weights.tiny and weights.checkpoint == after.checkpoint
    assert all(r.ok for r in verify(after))  # `avatar models verify` now checks the real set
    assert "WEIGHTS: real, verified" in weights_banner(after)


def test_an_incomplete_download_records_nothing(models):
    next(models.rglob("model-00003-of-00005.safetensors")).unlink()
    with pytest.raises(WeightsDownloadError):
        download(settings_for(models), progress=False)  # it would have to fetch the shard
    assert not (models / "verified.json").exists()
    assert settings_for(models).weights_source == "tiny"


def test_a_file_damaged_after_verification_falls_back_to_tiny_and_says_why(models):
    download(settings_for(models), progress=False)
    shard = next(models.rglob("model-00002-of-00005.safetensors"))
    shard.write_bytes(shard.read_bytes()[:10])
    settings = settings_for(models)
    assert settings.weights_source == "tiny" and settings.checkpoint is None
    banner = weights_banner(settings)
    assert "TINY" in banner and "gone or changed" in banner
    (weights_check,) = [c for c in run_doctor(settings) if c.name == "weights"]
    assert weights_check.status == "fail" and "gone or changed" in weights_check.detail
    assert "avatar models download" in weights_check.detail


def test_explicit_checkpoint_and_opt_out_win_over_the_record(models, tmp_path):
    download(settings_for(models), progress=False)
    other = tmp_path / "mine.safetensors"
    save_file({"w": np.zeros((1,), dtype=np.float32)}, str(other))
    configured = settings_for(models, checkpoint=other)
    assert configured.weights_source == "configured" and configured.checkpoint == other
    assert "AVATAR_CHECKPOINT" in weights_banner(configured)
    assert settings_for(models, use_verified=False).uses_tiny


def launch(models: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """The real launch script; `--host 0.0.0.0` without an API key makes `avatar serve` refuse at once,
    after the weights banner, so nothing keeps running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_")}
    env.update(AVATAR_MODELS_DIR=str(models), AVATAR_OUTPUTS_DIR=str(tmp_path / "outputs"), AVATAR_API_KEYS="[]")
    return subprocess.run(
        ["bash", str(PROJECT_ROOT / "scripts" / "launch_ltx2.sh"), "--no-ui", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )


@pytest.mark.slow
def test_launch_says_it_uses_the_verified_weights(models, tmp_path):
    download(settings_for(models), progress=False)
    run = launch(models, tmp_path)
    assert "refusing to listen on 0.0.0.0" in run.stderr  # it got as far as starting the server
    assert "WEIGHTS: real, verified by `avatar models download`" in run.stderr
    assert str(models / "ltx-2-19b-distilled-fp8.safetensors") in run.stderr
    assert "TINY" not in run.stderr
    assert not (models / "tiny").exists()  # the tiny set was not built


@pytest.mark.slow
def test_launch_without_verified_weights_says_tiny(tmp_path):
    models = tmp_path / "models"
    shutil.copytree(PROJECT_ROOT / "models" / "tiny", models / "tiny")
    run = launch(models, tmp_path)
    assert "refusing to listen on 0.0.0.0" in run.stderr
    assert "NO REAL WEIGHTS: using the TINY test checkpoint" in run.stderr
    assert "WEIGHTS: real" not in run.stderr
