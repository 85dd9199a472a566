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
from ltx2.engine.tiny import build_tiny, tree_digest
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
    assert tree_digest(fresh.root) == tree_digest(tiny.root)
    size = sum(p.stat().st_size for p in fresh.root.rglob("*") if p.is_file())
    assert 10e6 < size < 16e6


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
    save_file({"diffusion_model.nope.lora_A.weight": torch.zeros(2, 4, dtype=torch.bfloat16),
               "diffusion_model.nope.lora_B.weight": torch.zeros(4, 2, dtype=torch.bfloat16)}, str(bad))
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
    assert seen[-1].phase == "stage 2" and seen[-1].percent == 100.0
    assert len(seen) == seen[-1].overall_total == 11


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
