"""Face-profile training: photo intake on real faces, and real LoRA training on the tiny LTX-2 engine."""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance, ImageOps
from safetensors import safe_open

from ltx2.domain.errors import InvalidInputError, JobCanceled
from ltx2.domain.prompts import build_prompt
from ltx2.engine.pipelines import GenerationRequest
from ltx2.training.lora import ADAPTER, TrainProgress, _inject, lora_state_dict, train_face_lora
from ltx2.training.photos import PhotosRejected, best_photo, validate_photos

TRIGGER = "ohwx astronaut"
CAPTION = ("a photo of {trigger}, a person looking into the camera",)  # one caption: the tiny Gemma is slow on CPU
# Tuned for the tiny random checkpoint: big enough steps to move a random model clearly within 40 steps.
TRAIN = dict(steps=40, rank=4, alpha=4, learning_rate=1e-2, resolution=64, seed=0, checkpoint_every=20)
GEN = dict(width=64, height=64, num_frames=9, fps=24.0, seed=11)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="module")
def face_sources(astronaut) -> list[tuple[str, bytes]]:
    """Five 'photos' of one real face: the original, a mirror, two small rotations, a brighter crop."""
    a = astronaut
    return [
        ("original.png", _png(a)),
        ("mirrored.png", _png(ImageOps.mirror(a))),
        ("tilted-left.png", _png(a.rotate(6, resample=Image.Resampling.BICUBIC))),
        ("tilted-right.png", _png(a.rotate(-5, resample=Image.Resampling.BICUBIC))),
        ("bright-crop.png", _png(ImageEnhance.Brightness(a.crop((40, 0, 512, 472))).enhance(1.2))),
    ]


@pytest.fixture(scope="module")
def photos(face_sources):
    return validate_photos(face_sources[:4])


# --- photo intake --------------------------------------------------------------------------------------


def test_real_faces_are_accepted_and_cropped_around_the_face(face_sources):
    photos = validate_photos(face_sources)
    assert [p.name for p in photos] == [n for n, _ in face_sources]
    for p in photos:
        assert p.crop.mode == "RGB" and p.crop.width == p.crop.height
        x, y, w, h = p.face_box
        assert 80 <= w <= 130, p.face_box  # the astronaut's face is ~100 px in a 512 px photo
        # Crop = face box × 1.8, face centred (the face is far from the photo edges).
        assert abs(p.crop.width - 1.8 * max(w, h)) <= 2
        assert p.sharpness > 0 and p.score > 0
    best = best_photo(photos)
    assert photos[best].score == max(p.score for p in photos)


def test_paths_and_exif_orientation(tmp_path, astronaut):
    # A phone-style JPEG: pixels stored sideways, EXIF orientation 6 says "rotate 90° clockwise to view".
    sideways = astronaut.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    sideways.save(path, "JPEG", quality=95, exif=exif)
    upright = tmp_path / "upright.webp"
    astronaut.save(upright, "WEBP", quality=90)
    named_wrongly = tmp_path / "photo.txt"  # decoded by content, not by extension
    named_wrongly.write_bytes(_png(astronaut))
    large = tmp_path / "large.jpg"  # a 12 MP photo: kept at 2048 px, the face box in those pixels
    astronaut.resize((3500, 3500), Image.Resampling.BICUBIC).save(large, "JPEG", quality=90)
    photos = validate_photos(
        [("phone.jpg", path), ("upright.webp", upright), ("photo.txt", named_wrongly), ("large.jpg", large)]
    )
    assert photos[0].full.size == astronaut.size
    assert abs(photos[0].face_box[0] - photos[1].face_box[0]) < 15
    assert photos[3].full.size == (2048, 2048)
    assert abs(photos[3].face_box[0] / 4 - photos[1].face_box[0]) < 15


def test_every_bad_photo_is_reported_at_once(face_sources, astronaut):
    from skimage import data

    collage = Image.fromarray(np.concatenate([np.asarray(astronaut), np.asarray(ImageOps.mirror(astronaut))], axis=1))
    gradient = Image.fromarray(np.tile(np.linspace(0, 255, 400, dtype=np.uint8), (300, 1))).convert("RGB")
    bad = [
        ("coffee.png", _png(Image.fromarray(data.coffee()))),
        ("gradient.png", _png(gradient)),
        ("two-people.png", _png(collage)),
        ("thumbnail.png", _png(astronaut.resize((200, 200)))),
        ("notes.txt", b"these are my notes, not a photo"),
        ("far-away.png", _png(astronaut.resize((256, 256)))),
    ]
    with pytest.raises(PhotosRejected) as info:
        validate_photos(face_sources[:3] + bad)
    problems = {p.name: p.reason for p in info.value.problems}
    assert set(problems) == {n for n, _ in bad}
    assert problems["coffee.png"].startswith("no face found")
    assert problems["gradient.png"].startswith("no face found")
    assert problems["two-people.png"].startswith("2 faces found")
    assert problems["thumbnail.png"].startswith("too small (200x200)")
    assert problems["notes.txt"].startswith("not an image")
    assert problems["far-away.png"].startswith("face too small")
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    assert all(name in message for name in problems)


def test_too_few_and_too_many_photos(face_sources):
    with pytest.raises(PhotosRejected, match="at least 3") as few:
        validate_photos(face_sources[:2])
    assert few.value.problems == []
    eleven = [(f"{i}-{n}", d) for i in range(3) for n, d in face_sources][:11]
    with pytest.raises(PhotosRejected, match="at most 10"):
        validate_photos(eleven)


# --- training ------------------------------------------------------------------------------------------


def _generate(engine, lora: Path | None = None) -> torch.Tensor:
    prompt = build_prompt("Hello there.", trigger_token=TRIGGER)
    result = engine.generate(GenerationRequest(prompt=prompt, lora=lora, **GEN))
    return torch.cat(list(result.video))


def _base_state(engine) -> dict[str, torch.Tensor]:
    model = engine.ledger.with_loras(()).transformer()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _bits(t: torch.Tensor) -> tuple:
    """dtype, shape and raw bytes (float8 has no equality kernel on CPU)."""
    return t.dtype, tuple(t.shape), t.contiguous().view(torch.uint8).numpy().tobytes()


def _assert_base_restored(engine, before: dict[str, torch.Tensor]) -> None:
    from peft.tuners.tuners_utils import BaseTunerLayer

    model = engine.ledger.with_loras(()).transformer()
    after = model.state_dict()
    assert after.keys() == before.keys()
    assert all(_bits(before[k]) == _bits(after[k]) for k in before)
    assert not any(isinstance(m, BaseTunerLayer) for m in model.modules())
    assert not hasattr(model.velocity_model, "peft_config")
    assert not model.training and not model.velocity_model._enable_gradient_checkpointing


@pytest.fixture(scope="module")
def trained(engine, photos, tmp_path_factory):
    """One fixed-seed training run shared by the checks below, with what it must leave unchanged."""
    before_frames = _generate(engine)
    before_state = _base_state(engine)
    out = tmp_path_factory.mktemp("profiles") / "astronaut.safetensors"
    events: list[TrainProgress] = []
    start = time.process_time()
    result = train_face_lora(
        engine, photos, trigger=TRIGGER, out_path=out, captions=CAPTION, on_progress=events.append, **TRAIN
    )
    cpu_s = time.process_time() - start
    print(
        f"\ntraining: first-10 loss {np.mean(result.losses[:10]):.3f} -> last-10 {np.mean(result.losses[-10:]):.3f}; "
        f"validation {result.validation_losses}; {result.seconds:.1f} s wall, {cpu_s:.1f} s CPU"
    )
    return dict(
        result=result, events=events, photos=photos, before_frames=before_frames, before_state=before_state, out=out
    )


def test_training_lowers_the_loss(trained):
    result = trained["result"]
    assert result.steps == TRAIN["steps"] and len(result.losses) == TRAIN["steps"]
    assert all(math.isfinite(v) for v in result.losses)
    first, last = np.mean(result.losses[:10]), np.mean(result.losses[-10:])
    assert last <= 0.8 * first, (first, last)
    assert result.final_loss == pytest.approx(np.mean(result.losses[-4:]))
    assert result.first_loss_mean == pytest.approx(np.mean(result.losses[:4]))
    # 4 photos: one (not the best) held out; its loss with fixed noise/sigmas drops below the base model's.
    assert result.held_out is not None and result.held_out != result.best_photo
    steps_checked = [s for s, _ in result.validation_losses]
    assert steps_checked == [0, 20, 40]
    assert result.validation_loss == result.validation_losses[-1][1] < result.validation_losses[0][1]


def test_progress_is_reported_every_step(trained):
    events = trained["events"]
    phases = [e.phase for e in events]
    assert phases[0] == "encode" and phases[-1] == "export"
    assert {"encode", "train", "validate", "export"} == set(phases)
    train = [e for e in events if e.phase == "train"]
    assert [e.step for e in train] == list(range(1, TRAIN["steps"] + 1))
    assert all(e.total == TRAIN["steps"] and e.eta_s >= 0 and e.smoothed_loss > 0 for e in train)
    assert train[-1].eta_s == 0
    assert [e.loss for e in train] == trained["result"].losses


def test_export_is_the_layout_ltx_core_fuses(trained, engine):
    out: Path = trained["out"]
    assert out.is_file()
    assert not out.with_suffix(".ckpt.safetensors").exists()  # the final file supersedes the checkpoint
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temp files left
    model = engine.ledger.with_loras(()).transformer().velocity_model
    with safe_open(str(out), framework="pt") as f:
        meta = f.metadata()
        keys = sorted(f.keys())
        tensors = {k: f.get_tensor(k) for k in keys}
    assert meta["trigger"] == TRIGGER and meta["rank"] == "4" and meta["alpha"] == "4" and meta["steps"] == "40"
    assert float(meta["final_loss"]) == pytest.approx(trained["result"].final_loss, abs=1e-5)
    # Video self- and text cross-attention, q/k/v/out, both blocks of the tiny model: 16 modules.
    modules = sorted(
        {k[len("diffusion_model.") : -len(".lora_A.weight")] for k in keys if k.endswith(".lora_A.weight")}
    )
    assert len(modules) == 16 and len(keys) == 32
    for name in modules:
        assert name.split(".")[2] in ("attn1", "attn2")
        base = model.get_submodule(name)
        a = tensors[f"diffusion_model.{name}.lora_A.weight"]
        b = tensors[f"diffusion_model.{name}.lora_B.weight"]
        assert a.dtype == b.dtype == torch.bfloat16
        assert a.shape == (4, base.in_features) and b.shape == (base.out_features, 4)
    assert any(t.abs().max() > 0 for k, t in tensors.items() if k.endswith("lora_B.weight"))


def test_base_model_is_bit_identical_and_generation_unchanged(trained, engine):
    _assert_base_restored(engine, trained["before_state"])
    assert torch.equal(_generate(engine), trained["before_frames"])


def test_exported_lora_loads_through_the_engine_and_changes_frames(trained, engine):
    from ltx_core.loader import LTXV_LORA_COMFY_RENAMING_MAP, LoraPathStrengthAndSDOps

    out = trained["out"]
    with_lora = _generate(engine, lora=out)  # a LoraMismatchError here would mean a key/shape mismatch
    assert with_lora.shape == trained["before_frames"].shape
    diff = (with_lora.float() - trained["before_frames"].float()).abs().mean()
    print(f"\nmean abs frame difference with the trained LoRA: {diff:.2f} (uint8 levels)")
    assert diff > 5.0
    # What the ledger fuses is exactly W + B@A of the file (alpha/rank already folded into B).
    base = trained["before_state"]["velocity_model.transformer_blocks.0.attn2.to_k.weight"].float()
    fused_model = engine.ledger.with_loras((LoraPathStrengthAndSDOps(str(out), 1.0, LTXV_LORA_COMFY_RENAMING_MAP),))
    fused = fused_model.transformer().velocity_model.transformer_blocks[0].attn2.to_k.weight.float()
    with safe_open(str(out), framework="pt") as f:
        a = f.get_tensor("diffusion_model.transformer_blocks.0.attn2.to_k.lora_A.weight").float()
        b = f.get_tensor("diffusion_model.transformer_blocks.0.attn2.to_k.lora_B.weight").float()
    assert torch.allclose(fused, (base + b @ a).bfloat16().float(), atol=1e-2)
    assert (fused - base).abs().max() > 0


def test_export_folds_alpha_like_a_peft_merge():
    """The exported A/B reproduce peft's adapted layer: alpha/r goes into B, since ltx-core ignores alpha."""

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.attn1 = torch.nn.Module()
            self.attn1.to_q = torch.nn.Linear(12, 10)

    torch.manual_seed(0)  # outputs reach ~5: a fixed draw keeps the bf16 rounding below the tolerance each run
    model = torch.nn.Module()
    model.transformer_blocks = torch.nn.ModuleList([Block()])
    _inject(model, ["transformer_blocks.0.attn1.to_q"], rank=2, alpha=8, seed=0)
    layer = model.transformer_blocks[0].attn1.to_q
    torch.nn.init.normal_(layer.lora_B[ADAPTER].weight, std=0.5)
    x = torch.randn(3, 12)
    peft_out = layer(x)
    sd = lora_state_dict(model)
    a = sd["diffusion_model.transformer_blocks.0.attn1.to_q.lora_A.weight"].float()
    b = sd["diffusion_model.transformer_blocks.0.attn1.to_q.lora_B.weight"].float()
    base = layer.get_base_layer()
    ours = torch.nn.functional.linear(x, base.weight + b @ a, base.bias)
    # The file is bf16 (8 significant bits): equal up to that rounding, relative to the output's size.
    assert torch.allclose(peft_out, ours, rtol=1e-2, atol=2e-2)
    # Without alpha/r (= 4) folded in, the same check fails by far.
    unfolded = torch.nn.functional.linear(x, base.weight + (b / 4) @ a, base.bias)
    assert not torch.allclose(peft_out, unfolded, rtol=1e-2, atol=2e-2)


def test_layers_peft_cannot_train_are_refused_clearly():
    """fp8-scaled-mm swaps the Linears for its own FP8Linear: training says so instead of failing deep inside."""
    from ltx2.training.lora import TrainingUnsupportedError, _target_names

    class Opaque(torch.nn.Module):
        def forward(self, x):
            return x

    block = torch.nn.Module()
    block.attn1 = torch.nn.Module()
    block.attn1.to_q = Opaque()
    model = torch.nn.Module()
    model.transformer_blocks = torch.nn.ModuleList([block])
    with pytest.raises(TrainingUnsupportedError, match="not a plain Linear"):
        _target_names(model)


def test_cancel_leaves_no_file_and_the_base_untouched(engine, photos, tmp_path):
    before = _base_state(engine)
    out = tmp_path / "canceled.safetensors"
    steps_seen = []

    def on_progress(p: TrainProgress) -> None:
        if p.phase == "train":
            steps_seen.append(p.step)

    # A checkpoint is written at step 2, so cancelling after step 3 also shows it is cleaned up.
    with pytest.raises(JobCanceled):
        train_face_lora(
            engine,
            photos[:3],
            trigger=TRIGGER,
            out_path=out,
            captions=CAPTION,
            on_progress=on_progress,
            should_cancel=lambda: len(steps_seen) >= 3,
            **{**TRAIN, "checkpoint_every": 2},
        )
    assert steps_seen == [1, 2, 3]
    assert list(tmp_path.iterdir()) == []  # no LoRA, no checkpoint, no temp file
    _assert_base_restored(engine, before)


def test_an_error_mid_training_restores_the_base(engine, photos, tmp_path):
    before = _base_state(engine)

    def explode(p: TrainProgress) -> None:
        if p.phase == "train" and p.step == 2:
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        train_face_lora(
            engine,
            photos[:3],
            trigger=TRIGGER,
            out_path=tmp_path / "x.safetensors",
            captions=CAPTION,
            on_progress=explode,
            **{**TRAIN, "checkpoint_every": 1},
        )
    assert list(tmp_path.iterdir()) == []
    _assert_base_restored(engine, before)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(trigger="  "), "trigger"),
        (dict(resolution=50), "multiple of 32"),
        (dict(steps=0), "positive"),
        (dict(captions=("a photo of a person",)), "{trigger}"),
    ],
)
def test_bad_arguments_are_refused_before_any_work(engine, photos, tmp_path, kwargs, fragment):
    args = {"trigger": TRIGGER, **kwargs}
    with pytest.raises(InvalidInputError, match=fragment.replace("{", r"\{").replace("}", r"\}")):
        train_face_lora(engine, photos, out_path=tmp_path / "x.safetensors", **args)


def test_training_runs_on_an_fp8_cast_transformer(tiny, photos, tmp_path, monkeypatch):
    """The real-host layout: fp8-cast linears (float8 weights upcast per forward), with gradient checkpointing.

    ltx-core's fp8 upcast is plain `.to(bf16)` without stochastic rounding, so it runs on CPU too; only
    fusing a LoRA into float8 weights needs triton (CUDA), so the export is checked by layout here.
    """
    from ltx2.engine.pipelines import Engine, EngineWeights
    from ltx2.training import lora

    fp8_engine = Engine(
        EngineWeights(tiny.checkpoint, tiny.gemma_root, tiny.spatial_upsampler, tiny=True),
        device="cpu",
        quantization="fp8-cast",
    )
    model = fp8_engine.ledger.transformer().velocity_model
    assert model.transformer_blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    monkeypatch.setattr(lora, "_use_gradient_checkpointing", lambda device: True)
    before = _base_state(fp8_engine)
    seen = {}

    def inspect(p: TrainProgress) -> None:
        if p.phase == "train" and p.step == 1:
            layer = model.transformer_blocks[0].attn1.to_q
            seen["lora"] = layer.lora_A[ADAPTER].weight.dtype
            seen["base"] = layer.get_base_layer().weight.dtype
            seen["checkpointing"] = model._enable_gradient_checkpointing

    out = tmp_path / "fp8.safetensors"
    result = train_face_lora(
        fp8_engine,
        photos[:3],
        trigger=TRIGGER,
        out_path=out,
        captions=CAPTION,
        on_progress=inspect,
        **{**TRAIN, "steps": 20},
    )
    assert seen == {"lora": torch.float32, "base": torch.float8_e4m3fn, "checkpointing": True}
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5])
    with safe_open(str(out), framework="pt") as f:
        assert len(f.keys()) == 32 and {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}
    _assert_base_restored(fp8_engine, before)
