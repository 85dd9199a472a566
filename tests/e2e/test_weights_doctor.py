"""Weight plan, verification, resolution, offline download behaviour and `avatar doctor`."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from ltx2 import weights
from ltx2.doctor import Check, exit_status, format_checks, run_doctor
from ltx2.domain.digest import sha256_file
from ltx2.engine.tiny import TinyPaths, build_tiny
from ltx2.settings import Settings
from ltx2.weights import (
    ROLES,
    HubUnreachableError,
    WeightsMissingError,
    download,
    download_plan,
    model_family,
    resolved_weights,
    verify,
    verify_file,
)

# Loopback only: a closed port refuses at once, so nothing leaves the machine and nothing waits.
DEAD_ENDPOINT = "http://127.0.0.1:9"


def make_settings(tmp_path: Path, **kw) -> Settings:
    kw.setdefault("models_dir", tmp_path / "models")
    kw.setdefault("outputs_dir", tmp_path / "outputs")
    return Settings(_env_file=None, **kw)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """One tiny set per module (~8 s to build); tests that damage it work on copies."""
    return build_tiny(tmp_path_factory.mktemp("tiny-build") / "tiny").root


@pytest.fixture
def tiny_copy(tiny_root, tmp_path) -> TinyPaths:
    root = tmp_path / "models" / "tiny"
    shutil.copytree(tiny_root, root)
    return TinyPaths(root)


@pytest.fixture
def offline_hub(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)


def write_safetensors(path: Path, metadata: dict[str, str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": np.zeros((4, 4), dtype=np.float32)}, str(path), metadata=metadata)
    return path


# ----------------------------------------------------------------------------------------- the plan


def test_plan_covers_every_role_with_unique_local_paths(tmp_path):
    plan = download_plan(make_settings(tmp_path))
    assert {e.role for e in plan} == set(ROLES)
    locals_ = [e.local for e in plan]
    assert len(locals_) == len(set(locals_))
    by_role = {role: [e for e in plan if e.role == role] for role in ROLES}
    for role in ("checkpoint", "spatial_upsampler", "distilled_lora"):
        (entry,) = by_role[role]
        assert entry.repo == "Lightricks/LTX-2" and entry.filename.endswith(".safetensors")
    gemma_names = {e.filename for e in by_role["gemma"]}
    # What ltx-core looks for under the Gemma root.
    assert {"tokenizer.model", "preprocessor_config.json", "config.json"} <= gemma_names
    assert any(n.startswith("model-") and n.endswith(".safetensors") for n in gemma_names)
    assert len({Path(e.local).parent for e in by_role["gemma"]}) == 1


def test_plan_uses_configured_repos(tmp_path):
    plan = download_plan(make_settings(tmp_path, hf_repo="me/LTX-fork", hf_gemma_repo="me/gemma"))
    assert {e.repo for e in plan} == {"me/LTX-fork", "me/gemma"}


# --------------------------------------------------------------------------------------------- verify


def test_verify_fresh_tiny_set_is_all_ok(tiny_root):
    results = verify(TinyPaths(tiny_root))
    assert results and all(r.ok for r in results), [r for r in results if not r.ok]
    assert {r.role for r in results} == set(ROLES)
    assert all(r.size and r.size > 0 for r in results)


def test_verify_settings_without_checkpoint_checks_the_tiny_set(tiny_copy, tmp_path):
    results = verify(make_settings(tmp_path))
    assert all(r.ok for r in results)
    assert any(r.path == tiny_copy.checkpoint for r in results)


def test_verify_detects_truncated_checkpoint(tiny_copy):
    size = tiny_copy.checkpoint.stat().st_size
    with tiny_copy.checkpoint.open("r+b") as f:
        f.truncate(size // 2)
    bad = [r for r in verify(tiny_copy) if not r.ok]
    assert [r.role for r in bad] == ["checkpoint"]
    assert "safetensors" in bad[0].reason


def test_verify_detects_corrupted_header(tiny_copy):
    with tiny_copy.spatial_upsampler.open("r+b") as f:
        f.write(b"\xff" * 16)
    bad = [r for r in verify(tiny_copy) if not r.ok]
    assert [r.role for r in bad] == ["spatial_upsampler"]


def test_verify_detects_missing_files(tiny_copy):
    tiny_copy.distilled_lora.unlink()
    (tiny_copy.gemma_root / "tokenizer.model").unlink()
    bad = {(r.role, r.reason) for r in verify(tiny_copy) if not r.ok}
    assert bad == {("distilled_lora", "missing"), ("gemma", "missing")}


def test_verify_file_checks_size_and_hash(tmp_path):
    path = write_safetensors(tmp_path / "x.safetensors")
    size = path.stat().st_size
    assert verify_file(path, "checkpoint", size=size).ok
    wrong_size = verify_file(path, "checkpoint", size=size + 1)
    assert not wrong_size.ok and "size" in wrong_size.reason
    digest = sha256_file(path)
    assert verify_file(path, "checkpoint", sha256=digest).ok
    wrong_hash = verify_file(path, "checkpoint", sha256="0" * 64)
    assert not wrong_hash.ok and "sha256" in wrong_hash.reason


def test_gemma_index_naming_a_missing_shard_is_caught(tiny_copy):
    index = tiny_copy.gemma_root / "model.safetensors.index.json"
    index.write_text('{"weight_map": {"a": "model.safetensors", "b": "model-00002-of-00002.safetensors"}}')
    bad = [r for r in verify(tiny_copy) if not r.ok]
    assert [(r.path.name, r.reason) for r in bad] == [("model-00002-of-00002.safetensors", "missing")]


# ---------------------------------------------------------------------------------------- resolution


def test_resolved_weights_without_checkpoint_is_the_tiny_set(tiny_copy, tmp_path):
    ws = resolved_weights(make_settings(tmp_path))
    assert ws.tiny is True
    assert (ws.checkpoint, ws.spatial_upsampler, ws.distilled_lora, ws.gemma_root) == (
        tiny_copy.checkpoint,
        tiny_copy.spatial_upsampler,
        tiny_copy.distilled_lora,
        tiny_copy.gemma_root,
    )


def test_resolved_weights_with_missing_checkpoint_says_how_to_fix(tmp_path):
    missing = tmp_path / "nowhere" / "ltx-2-19b-distilled-fp8.safetensors"
    with pytest.raises(WeightsMissingError) as info:
        resolved_weights(make_settings(tmp_path, checkpoint=missing))
    message = str(info.value)
    assert str(missing) in message
    assert "avatar models download" in message


def test_resolved_weights_falls_back_to_planned_locations(tiny_root, tmp_path):
    settings = make_settings(tmp_path)
    models = settings.models_dir
    checkpoint = write_safetensors(tmp_path / "elsewhere" / "ckpt.safetensors")
    write_safetensors(models / "ltx-2-spatial-upscaler-x2-1.0.safetensors")
    write_safetensors(models / "ltx-2-19b-distilled-lora-384.safetensors")
    shutil.copytree(Path(tiny_root) / "gemma-tiny", models / weights.GEMMA_DIR)
    ws = resolved_weights(make_settings(tmp_path, checkpoint=checkpoint))
    assert ws.tiny is False
    assert ws.checkpoint == checkpoint
    assert ws.spatial_upsampler == models / "ltx-2-spatial-upscaler-x2-1.0.safetensors"
    assert ws.gemma_root == models / weights.GEMMA_DIR


def test_model_family_reads_model_version(tmp_path):
    assert model_family(write_safetensors(tmp_path / "a.safetensors", {"model_version": "2.3.0"})) == "LTX-2.3"
    assert model_family(write_safetensors(tmp_path / "b.safetensors", {"model_version": "2.0"})) == "LTX-2"
    assert model_family(write_safetensors(tmp_path / "c.safetensors")) == "LTX-2"
    assert model_family(tmp_path / "missing.safetensors") == "LTX-2"


# ------------------------------------------------------------------------------------------- download


def assert_nothing_written(models_dir: Path) -> None:
    leftovers = [p for p in models_dir.rglob("*")] if models_dir.exists() else []
    assert leftovers == []


def test_download_with_unreachable_hub_fails_fast_and_clearly(tmp_path, offline_hub):
    settings = make_settings(tmp_path)
    started = time.monotonic()
    with pytest.raises(HubUnreachableError) as info:
        download(settings, progress=False)
    assert time.monotonic() - started < 10  # no minutes of retries
    message = str(info.value)
    assert "\n" not in message
    assert "huggingface.co" in message and "internet" in message
    assert "AVATAR_MODELS_DIR" in message and "AVATAR_CHECKPOINT" in message
    assert_nothing_written(settings.models_dir)


def test_download_with_hf_hub_offline_set(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", DEAD_ENDPOINT)
    settings = make_settings(tmp_path)
    with pytest.raises(HubUnreachableError, match="HF_HUB_OFFLINE"):
        download(settings, roles=["checkpoint"], progress=False)
    assert_nothing_written(settings.models_dir)


def test_connection_lost_mid_download_leaves_no_debris(tmp_path, offline_hub, monkeypatch):
    import requests

    monkeypatch.setattr(weights, "_preflight", lambda repo, token: None)

    def dropping_download(repo_id, filename, *, local_dir, **kw):
        # What huggingface_hub leaves when a connection drops before any data arrived.
        download_dir = Path(local_dir) / ".cache" / "huggingface" / "download"
        download_dir.mkdir(parents=True)
        (download_dir / f"{filename}.lock").touch()
        raise requests.ConnectionError("connection reset by peer")

    monkeypatch.setattr("huggingface_hub.hf_hub_download", dropping_download)
    settings = make_settings(tmp_path)
    with pytest.raises(HubUnreachableError, match="connection reset"):
        download(settings, roles=["checkpoint"], progress=False)
    assert_nothing_written(settings.models_dir)


def test_download_skips_files_already_in_place(tmp_path, monkeypatch):
    # A pre-populated models folder needs no network at all.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    settings = make_settings(tmp_path)
    for entry in download_plan(settings):
        if entry.role != "gemma":
            write_safetensors(settings.models_dir / entry.local)
    paths = download(settings, roles=["checkpoint", "spatial_upsampler", "distilled_lora"], progress=False)
    assert [p.name for p in paths] == [
        "ltx-2-19b-distilled-fp8.safetensors",
        "ltx-2-spatial-upscaler-x2-1.0.safetensors",
        "ltx-2-19b-distilled-lora-384.safetensors",
    ]


def test_download_rejects_unknown_roles(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        download(make_settings(tmp_path), roles=["vae"])


# --------------------------------------------------------------------------------------------- doctor


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_doctor_on_tiny_set(tiny_copy, tmp_path):
    checks = run_doctor(make_settings(tmp_path))
    names = by_name(checks)
    assert names["weights"].status == "ok" and "tiny" in names["weights"].detail
    assert names["checkpoint"].status == "ok"
    assert {"python", "torch", "gpu", "disk (models)", "disk (outputs)", "codecs", "ltx packages"} <= set(names)
    assert names["ltx packages"].status == "ok" and "1.0.0" in names["ltx packages"].detail
    if not _has_cuda():
        assert names["gpu"].status == "warn" and "tiny" in names["gpu"].detail
    report = format_checks(checks)
    assert len(report.splitlines()) == len(checks) + 1
    assert all(c.status != "fail" for c in checks if c.name not in {"codecs"}), report


def test_doctor_with_configured_checkpoint_and_missing_models(tmp_path):
    missing = tmp_path / "gone" / "ltx-2-19b-distilled-fp8.safetensors"
    checks = run_doctor(make_settings(tmp_path, models_dir=tmp_path / "gone", checkpoint=missing))
    weights_check = by_name(checks)["weights"]
    assert weights_check.status == "fail"
    assert str(missing) in weights_check.detail and "avatar models download" in weights_check.detail
    assert exit_status(checks) == 1
    assert "FAIL" in format_checks(checks)


def test_doctor_reports_unbuilt_tiny_set_as_a_warning(tmp_path):
    checks = run_doctor(make_settings(tmp_path))
    assert by_name(checks)["weights"].status == "warn"


def test_exit_status():
    assert exit_status([Check("a", "ok", ""), Check("b", "warn", "")]) == 0
    assert exit_status([Check("a", "ok", ""), Check("b", "fail", "")]) == 1


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def test_no_network_variables_leak_between_tests():
    # The fixtures use monkeypatch; make sure a dead endpoint never becomes the default for other tests.
    assert os.environ.get("HF_ENDPOINT") != DEAD_ENDPOINT
