"""The engine through the real ltx-pipelines code on the tiny checkpoint."""

from __future__ import annotations

import logging

import pytest
import torch
from ltx_core.loader import LTXV_LORA_COMFY_RENAMING_MAP, LoraPathStrengthAndSDOps
from ltx_pipelines.utils.model_ledger import ModelLedger

from ltx2.domain.errors import InvalidInputError, JobCanceled, OutOfMemoryError
from ltx2.engine.ledger import LoraMismatchError, ResidentLedger
from ltx2.engine.pipelines import GenerationRequest
from ltx2.engine.tiny import TINY_DIGEST, build_tiny, tree_digest
from tests.conftest import write_tone

SMALL = dict(width=64, height=64, num_frames=9, fps=24.0)


def run(engine, **kwargs):
    """Generate and return (frames uint8 [F,H,W,3], audio waveform, result)."""
    request = GenerationRequest(prompt=kwargs.pop("prompt", 'A woman says: "Hello there."'), **{**SMALL, **kwargs})
    result = engine.generate(request)
    frames = torch.cat([chunk for chunk in result.video])
    return frames, result.audio.waveform, result


def test_tiny_build_is_byte_identical_and_small(tiny, tmp_path):
    fresh = build_tiny(tmp_path / "again")
    assert tree_digest(fresh.root) == tree_digest(tiny.root) == TINY_DIGEST
    size = sum(p.stat().st_size for p in fresh.root.rglob("*") if p.is_file())
    assert 12e6 < size < 17e6  # 14.8 MB: the trained video VAE's decoder starts 128 channels wide


def test_tiny_loads_without_uninitialized_parameters(tiny, caplog):
    ledger = ResidentLedger(
        dtype=torch.bfloat16,
        device=torch.device("cpu"),
        checkpoint_path=str(tiny.checkpoint),
        gemma_root_path=str(tiny.gemma_root),
        spatial_upsampler_path=str(tiny.spatial_upsampler),
    )
    with caplog.at_level(logging.WARNING):
        ledger.warm_up()
    assert ledger.builds == 9
    assert not [r for r in caplog.records if "Uninitialized" in r.getMessage()]


@pytest.mark.parametrize("mode", ["distilled", "two-stage"])
def test_text_modes_produce_requested_frames_and_audio(engine, mode):
    frames, audio, result = run(engine, mode=mode, steps=3, width=128, height=64, num_frames=17)
    assert frames.shape == (17, 64, 128, 3) and frames.dtype == torch.uint8
    assert result.tiny and result.pipeline in ("DistilledPipeline", "TI2VidTwoStagesPipeline")
    assert audio.shape[0] == 2 and result.audio.sampling_rate == 24000
    # Joint audio+video: the generated speech spans the clip (within one audio latent step of 40 ms).
    assert abs(audio.shape[1] / 24000 - 17 / 24) < 0.1


def test_audio_mode_follows_the_recording(engine, tmp_path):
    voice = write_tone(tmp_path / "voice.wav", seconds=1.0, channels=1)  # mono: the engine up-mixes
    frames, audio, result = run(engine, audio=voice, steps=2, num_frames=17)
    assert result.pipeline == "A2VidPipelineTwoStage"
    assert frames.shape[0] == 17
    # The recording itself comes back, stereo, trimmed to the clip.
    assert audio.shape[0] == 2
    assert abs(audio.shape[1] / result.audio.sampling_rate - 17 / 24) < 0.05


def test_same_seed_same_output_other_seed_differs(engine):
    a, wa, _ = run(engine, seed=7)
    b, wb, _ = run(engine, seed=7)
    c, _, _ = run(engine, seed=8)
    assert torch.equal(a, b) and torch.equal(wa, wb)
    assert not torch.equal(a, c)


def test_reference_image_changes_output(engine, face_photo):
    plain, _, _ = run(engine, seed=3)
    with_face, _, _ = run(engine, seed=3, image=face_photo, image_strength=1.0)
    anchored, _, _ = run(engine, seed=3, image=face_photo, image_strength=1.0, keyframe_anchors=1, num_frames=17)
    assert (plain.float() - with_face.float()).abs().mean() > 1.0
    assert anchored.shape[0] == 17


def test_lora_changes_output_and_switching_back_restores_base(engine, tiny):
    base, _, _ = run(engine, seed=5)
    with_lora, _, _ = run(engine, seed=5, lora=tiny.distilled_lora, lora_strength=4.0)
    again, _, _ = run(engine, seed=5)
    assert (base.float() - with_lora.float()).abs().mean() > 0.5
    assert torch.equal(base, again)


def test_in_place_lora_matches_the_library_fusion(tiny):
    """Switching a LoRA in place gives the same weights ltx-core's own build-time fusion gives."""
    lora = (LoraPathStrengthAndSDOps(str(tiny.distilled_lora), 2.0, LTXV_LORA_COMFY_RENAMING_MAP),)
    kwargs = dict(dtype=torch.bfloat16, device=torch.device("cpu"), checkpoint_path=str(tiny.checkpoint))
    reference = ModelLedger(loras=lora, **kwargs).transformer().state_dict()
    resident = ResidentLedger(**kwargs)
    base_before = {k: v.clone() for k, v in resident.transformer().state_dict().items()}
    fused = resident.with_loras(lora).transformer().state_dict()
    assert resident.builds == 1
    changed = [k for k in reference if not torch.equal(base_before[k], reference[k])]
    assert changed, "the LoRA should touch some weights"
    for key, value in reference.items():
        assert torch.equal(fused[key], value), key
    restored = resident.transformer().state_dict()
    for key, value in base_before.items():
        assert torch.equal(restored[key], value), key


def test_lora_for_another_model_is_refused(tiny, tmp_path, engine):
    from safetensors.torch import save_file

    bad = tmp_path / "other.safetensors"
    save_file(
        {
            "diffusion_model.nope.lora_A.weight": torch.zeros(2, 4, dtype=torch.bfloat16),
            "diffusion_model.nope.lora_B.weight": torch.zeros(4, 2, dtype=torch.bfloat16),
        },
        str(bad),
    )
    with pytest.raises(LoraMismatchError):
        run(engine, lora=bad)
    run(engine)  # the engine still serves the next job


def test_cancel_stops_within_one_step(engine):
    seen = []

    def on_progress(p):
        seen.append(p)

    with pytest.raises(JobCanceled):
        engine.generate(
            GenerationRequest(prompt="Hello", **SMALL),
            on_progress=on_progress,
            should_cancel=lambda: len(seen) >= 3,
        )
    # Three steps ran, the flag was seen before the fourth: nothing more was computed.
    assert len(seen) == 3
    assert [p.overall_step for p in seen] == [1, 2, 3]


def test_progress_reports_every_step(engine):
    seen = []
    engine.generate(GenerationRequest(prompt="Hello", **SMALL), on_progress=seen.append)
    assert [(p.phase, p.step) for p in seen][:2] == [("stage 1", 1), ("stage 1", 2)]
    steps, last = seen[:-1], seen[-1]
    assert steps[-1].phase == "stage 2" and steps[-1].percent == 100.0
    assert len(steps) == steps[-1].overall_total == 11
    # After the last step the sound's decode is announced (the render path reports it done when generate returns).
    assert (last.phase, last.step, last.total) == ("audio", 0, 1)


def test_second_job_reads_no_weight_file(engine, monkeypatch, tiny):
    run(engine, lora=tiny.distilled_lora)  # warm: every model and this LoRA resident
    import safetensors

    opened = []
    real_open = safetensors.safe_open

    def counting_open(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(safetensors, "safe_open", counting_open)
    builds = engine.ledger.builds
    run(engine, seed=11)
    run(engine, seed=12, lora=tiny.distilled_lora)
    run(engine, seed=13, mode="two-stage", steps=2)
    assert opened == []
    assert engine.ledger.builds == builds


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(width=100), "multiple of 64"),
        (dict(height=0), "multiple of 64"),
        (dict(num_frames=10), r"8k\+1"),
        (dict(num_frames=2000), r"8k\+1"),
        (dict(prompt="   "), "empty"),
        (dict(image_strength=1.5), "0–1"),
        (dict(mode="turbo"), "unknown mode"),
        (dict(keyframe_anchors=2), "give an image"),
    ],
)
def test_bad_requests_raise_typed_errors(engine, kwargs, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        run(engine, **kwargs)


def test_non_image_and_missing_files_are_refused(engine, tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(InvalidInputError, match="not an image"):
        run(engine, image=text)
    with pytest.raises(InvalidInputError, match="not found"):
        run(engine, audio=tmp_path / "missing.wav")
    with pytest.raises(InvalidInputError):
        run(engine, audio=text)


# --- compute dtype: float32 where the CPU only emulates bf16 ------------------------------------------------

AVX2_ONLY = "flags\t\t: fpu sse4_2 avx avx2 fma f16c\n"
WITH_BF16 = "flags\t\t: fpu sse4_2 avx avx2 avx512f avx512bw avx512_bf16\n"
WITH_AMX = "flags\t\t: fpu avx2 avx512f amx_tile amx_bf16\n"


@pytest.mark.parametrize(
    "cpuinfo, environ, native",
    [
        (AVX2_ONLY, {}, False),
        (WITH_BF16, {}, True),
        (WITH_AMX, {}, True),
        # A fast machine imitating a slow one: the limits are honoured.
        (WITH_BF16, {"ONEDNN_MAX_CPU_ISA": "AVX2"}, False),
        (WITH_AMX, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, False),
        (WITH_BF16, {"ATEN_CPU_CAPABILITY": "avx2"}, False),
        (WITH_AMX, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, True),
        ("", {}, False),
    ],
)
def test_native_bf16_is_detected_from_the_cpu_flags(cpuinfo, environ, native):
    from ltx2.engine.device import cpu_has_native_bf16

    assert cpu_has_native_bf16(cpuinfo, environ) is native


def test_compute_dtype_follows_the_device_and_the_setting(monkeypatch):
    from ltx2.engine import device

    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert device.compute_dtype(torch.device("cpu")) == torch.float32
    assert device.compute_dtype(torch.device("cpu"), "bfloat16") == torch.bfloat16
    assert device.compute_dtype(torch.device("cuda")) == torch.bfloat16  # the release's dtype on a GPU
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert device.compute_dtype(torch.device("cpu")) == torch.bfloat16
    assert device.compute_dtype(torch.device("cpu"), "float32") == torch.float32


@pytest.fixture(scope="module")
def dtype_engines(tiny):
    from ltx2.engine.pipelines import Engine, EngineWeights

    weights = EngineWeights(tiny.checkpoint, tiny.gemma_root, tiny.spatial_upsampler, tiny.distilled_lora, tiny=True)
    return {name: Engine(weights, device="cpu", cpu_dtype=name) for name in ("float32", "bfloat16")}


def test_float32_runs_the_same_pipelines_deterministically(dtype_engines, tiny):
    f32, bf16 = dtype_engines["float32"], dtype_engines["bfloat16"]
    assert f32.model_info["dtype"] == "float32" and bf16.model_info["dtype"] == "bfloat16"
    for mode in ("distilled", "two-stage"):
        a, audio_a, _ = run(f32, mode=mode, steps=2, seed=3, lora=tiny.distilled_lora)
        b, audio_b, _ = run(f32, mode=mode, steps=2, seed=3, lora=tiny.distilled_lora)
        assert torch.equal(a, b) and torch.equal(audio_a, audio_b)  # deterministic per dtype
        c, _, _ = run(bf16, mode=mode, steps=2, seed=3, lora=tiny.distilled_lora)
        assert a.shape == c.shape == (9, 64, 64, 3)
    transformer = f32.ledger.transformer().velocity_model
    assert transformer.transformer_blocks[0].attn1.to_q.weight.dtype == torch.float32


def test_float32_in_place_lora_matches_the_library_fusion(tiny):
    """A float32 model fuses a LoRA to exactly the weights the library's bf16 fusion gives, upcast."""
    lora = (LoraPathStrengthAndSDOps(str(tiny.distilled_lora), 2.0, LTXV_LORA_COMFY_RENAMING_MAP),)
    kwargs = dict(dtype=torch.bfloat16, device=torch.device("cpu"), checkpoint_path=str(tiny.checkpoint))
    reference = ModelLedger(loras=lora, **kwargs).transformer().state_dict()
    resident = ResidentLedger(compute_dtype=torch.float32, **kwargs)
    base_before = {k: v.clone() for k, v in resident.transformer().state_dict().items()}
    fused = resident.with_loras(lora).transformer().state_dict()
    for key, value in reference.items():
        assert fused[key].dtype == torch.float32
        assert torch.equal(fused[key], value.float()), key
    restored = resident.transformer().state_dict()
    for key, value in base_before.items():
        assert torch.equal(restored[key], value), key


def test_exclusive_use_turns_out_of_memory_into_the_typed_error_and_lets_go(engine):
    # A CUDA out-of-memory can happen in generation, in the lazy VAE decode an encode drives, or in training;
    # each runs inside exclusive(), which turns it into the error callers know (the worker's out_of_memory
    # code, one line from `avatar generate`) and releases the engine for the next job.
    import threading

    with pytest.raises(OutOfMemoryError, match="during decoding 64x64"):
        with engine.exclusive("decoding 64x64"):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    taken = threading.Event()

    def other_job():
        with engine.exclusive():
            taken.set()

    thread = threading.Thread(target=other_job)
    with engine.exclusive():  # reentrant for its holder; another thread waits for it
        with engine.exclusive():
            thread.start()
            assert not taken.wait(0.3)
    thread.join(5)
    assert taken.is_set()
