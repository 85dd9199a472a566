"""bench/gpu_fullsize.py on CPU: the tiny shapes through the same build/preload/timing path as the GPU run."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

SMALL = ["--tiny", "--device", "cpu", "--sizes", "64x64x9", "--repeat", "1"]


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[2] / "bench" / "gpu_fullsize.py"
    spec = importlib.util.spec_from_file_location("gpu_fullsize_bench", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def _check_run(run: dict, width: int, height: int, frames: int) -> None:
    stages = run["stages"]
    assert set(stages) == {"text_encode", "stage_1", "upsample", "stage_2", "decode", "encode"}
    assert all(seconds > 0 for seconds in stages.values()), stages
    assert run["total"] >= stages["stage_1"] + stages["stage_2"]
    # The stages partition the request's wall time.
    assert run["total"] == pytest.approx(sum(stages.values()), rel=1e-6)
    assert run["video_shape"] == [frames, height, width, 3]
    channels, samples = run["audio_shape"]
    assert channels == 2 and run["audio_sample_rate"] == 24000
    assert abs(samples / 24000 - frames / 24) < 0.1  # joint audio spans the clip


def test_tiny_cpu_run_times_every_stage(bench, tiny):
    report = bench.main(SMALL)
    assert report["models"] == "tiny" and report["quantization"] == "none"
    assert len(report["runs"]) == 1
    _check_run(report["runs"][0], 64, 64, 9)
    assert report["goal"]["met"] is None  # no goal verdict off an H100-class run


def test_fp8_cast_path_runs_on_cpu(bench, tiny):
    # The CUDA default stores the transformer's block linears in float8; exercise that path here too.
    report = bench.main([*SMALL, "--sizes", "128x64x17", "--warmup", "0", "--quantization", "fp8-cast"])
    assert report["quantization"] == "fp8-cast"
    _check_run(report["runs"][0], 128, 64, 17)


@pytest.mark.parametrize("fp8", [False, True])
def test_random_models_match_what_the_ledger_loads(bench, tiny, fp8):
    from ltx_core.quantization import QuantizationPolicy

    from ltx2.engine.ledger import ResidentLedger

    built = bench.build_models(bench.tiny_model_set(), torch.device("cpu"), tiny.gemma_root, fp8=fp8)
    ledger = ResidentLedger(
        dtype=torch.bfloat16,
        device=torch.device("cpu"),
        checkpoint_path=str(tiny.checkpoint),
        gemma_root_path=str(tiny.gemma_root),
        spatial_upsampler_path=str(tiny.spatial_upsampler),
        quantization=QuantizationPolicy.fp8_cast() if fp8 else None,
    )
    ledger.warm_up()
    for name in bench.MODEL_NAMES:
        ours = {k: (tuple(v.shape), v.dtype) for k, v in built[name].state_dict().items()}
        loaded = {k: (tuple(v.shape), v.dtype) for k, v in ledger._resident.models[name].state_dict().items()}
        assert ours == loaded, name
    assert built["text_encoder"].tokenizer is not None


def test_full_size_counts_on_meta_leave_gemma_config_alone(bench):
    from ltx_core.text_encoders.gemma.config import GEMMA3_CONFIG_FOR_LTX

    before = dataclasses.asdict(GEMMA3_CONFIG_FOR_LTX)
    report = bench.main(["--meta-only"])
    params = report["params"]
    assert 18e9 < params["transformer"] < 20e9  # LTX-2 "19B" (text connectors live in the embeddings processor)
    assert 11.5e9 < params["text_encoder"] < 12.5e9  # Gemma-3 12B incl. its vision tower
    assert dataclasses.asdict(GEMMA3_CONFIG_FOR_LTX) == before


def test_levers_are_timed_side_by_side_and_attention_is_reported(bench, tiny):
    levers = ["baseline", "prompt-cache", "overlap", "small-tiles"]
    report = bench.main([*SMALL, "--warmup", "1", "--levers", ",".join(levers), "--attention"])
    assert [run["levers"] for run in report["runs"]] == levers
    for run in report["runs"]:  # the overlapped encodes too: every frame decoded, timed and encoded
        _check_run(run, 64, 64, 9)
    # With the cache the timed run made no Gemma pass (its prompt was encoded by the warm-up run).
    baseline, cached = report["runs"][:2]
    assert baseline["detail"]["gemma_forward"] > 0 and "gemma_forward" not in cached["detail"]
    attention = report["attention"]
    assert attention["ltx_core_backend"] in ("xformers", "pytorch SDPA")
    assert any("scaled_dot_product" in name for name in attention["kernels"]), attention["kernels"]


@pytest.mark.parametrize("quantization", ["none", "fp8-cast"])
def test_cold_start_writes_the_release_layout_and_a_real_worker_loads_it(bench, tiny, tmp_path, quantization):
    # Tiny shapes, the full-size path: random weights written as the release's files, `avatar worker` to READY.
    args = [*SMALL, "--cold", "--cold-dir", str(tmp_path), "--cold-cache", "warm", "--quantization", quantization]
    report = bench.main(args)
    written = report["cold"]["written"]
    gemma = Path(written["paths"]["gemma_root"])
    assert (gemma / "model.safetensors.index.json").is_file() and list(gemma.glob("model-*-of-*.safetensors"))
    ready = report["cold"]["ready"]["warm"]
    log = Path(ready["log"]).read_text()
    assert ready["ready_s"] > 0 and "ready in" in log and "tiny checkpoint" not in log
