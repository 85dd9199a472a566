"""Face-profile LoRA training on the engine's resident LTX-2 transformer.

The transformer is the one generation uses: training borrows it under the engine's lock, injects peft LoRA
layers into its video attention, trains only those, exports them in the layout ltx-core fuses, and then
takes the layers out again without merging, so the base weights are bit-identical afterwards.

Objective (rectified flow, as LTX-2 is trained): x_t = (1-σ)·x0 + σ·ε, the model predicts the velocity
ε - x0, loss = MSE over the video tokens. σ is drawn logit-normal (σ = sigmoid(n), n ~ N(0, 1)): it puts
most steps at mid noise levels, where the coarse structure of a face (and so its identity) is decided, and
few at the extremes, where the target is nearly pure noise or nearly the clean image.

Each photo becomes a 1-frame clip (1 = 8k+1 with k=0, a valid LTX-2 length); the audio branch is left out
(`audio=None`, which LTXModel accepts: the blocks then skip audio self-attention and both audio-video
cross-attentions), so gradients come from the video tokens only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ltx2.domain.errors import EngineError, InvalidInputError, JobCanceled
from ltx2.domain.prompts import DEFAULT_FRAMING, tidy_fragment
from ltx2.training.photos import CROP_MARGIN, FacePhoto, best_photo, face_crop

# Video self-attention (attn1) and text cross-attention (attn2) of every block: self-attention shapes
# the face, cross-attention ties it to the trigger word. Audio and audio-video attention get no gradient
# from a still image, so adapting them would only add zeros to the file.
TARGET_MODULES = r"transformer_blocks\.\d+\.attn[12]\.(to_q|to_k|to_v|to_out\.0)"
ADAPTER = "face"
LORA_PREFIX = "diffusion_model."  # ltx-core's ComfyUI layout, stripped by LTXV_LORA_COMFY_RENAMING_MAP

# Captions share build_prompt()'s subject wording for a trained profile ("<trigger>" names the subject,
# "A medium close-up shot of ..., facing the camera"), so the token is learned in the context it is used.
CAPTIONS = (
    "a photo of {trigger}, a person looking into the camera",
    "A " + DEFAULT_FRAMING + " shot of {trigger}, facing the camera against a softly blurred, neutral background.",
    "A close-up portrait of {trigger}, looking into the camera, soft, even light on the face.",
)
VARIANTS_PER_PHOTO = 4  # the crop itself plus 3 jittered re-crops
JITTER_SCALE = 0.06  # crop margin × U(1 - s, 1 + s)
JITTER_SHIFT = 0.04  # crop centre moved by U(-s, s) × face side, each axis
VALIDATION_SIGMAS = (0.1, 0.3, 0.5, 0.7, 0.9)
FPS = 24.0  # the engine's default rate: a 1-frame clip spans time [0, 1/FPS], as frame 0 of a generated clip
EMA_BETA = 0.9
MAX_GRAD_NORM = 1.0
CUDA_RESOLUTION = 512
CPU_RESOLUTION = 64  # the tiny checkpoint on CPU: a 2x2 latent, seconds per run


class TrainingUnsupportedError(EngineError):
    """The resident transformer is in a form LoRA training cannot run on (e.g. fp8-scaled-mm kernels)."""

    code = "training_unsupported"


@dataclass(frozen=True)
class TrainProgress:
    phase: str  # "encode", "train", "validate" or "export"
    step: int  # done in this phase
    total: int  # of this phase
    loss: float | None = None
    smoothed_loss: float | None = None  # bias-corrected EMA of the training loss
    eta_s: float | None = None  # seconds of training left


@dataclass
class TrainResult:
    lora_path: Path
    steps: int
    losses: list[float]
    final_loss: float  # mean of the last 10 % of steps
    validation_loss: float | None  # on the held-out photo at the end; None without one
    first_loss_mean: float  # mean of the first 10 % of steps
    seconds: float
    best_photo: int
    held_out: int | None = None  # index of the validation photo
    # (step, loss) per check: step 0 is the untrained base model, then every checkpoint and the end
    validation_losses: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class _Sample:
    latent: torch.Tensor  # patchified clean latent x0 [1, T, 128]
    caption: int


@dataclass
class _Saved:
    """What training changes on the model, to put back exactly."""

    requires_grad: dict[str, bool]
    training: dict[str, bool]
    attributes: set[str]
    checkpointing: bool


def default_resolution(device: torch.device) -> int:
    return CUDA_RESOLUTION if device.type == "cuda" else CPU_RESOLUTION


def train_face_lora(
    engine,
    photos: Sequence[FacePhoto],
    *,
    trigger: str,
    out_path: Path,
    steps: int = 300,
    rank: int = 16,
    alpha: float = 16,
    learning_rate: float = 1e-4,
    resolution: int | None = None,
    seed: int = 0,
    checkpoint_every: int | None = 100,
    validation: bool = True,
    captions: Sequence[str] | None = None,
    on_progress: Callable[[TrainProgress], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train a face LoRA on `photos` (from validate_photos) and write it to `out_path` (ltx-core format).

    Raises JobCanceled when `should_cancel()` turns true (checked every step; no file is left behind),
    InvalidInputError for bad arguments, TrainingUnsupportedError when the transformer cannot be trained.
    `captions` are templates with a `{trigger}` field (default CAPTIONS); each is text-encoded once.
    """
    out_path = Path(out_path)
    token = tidy_fragment(trigger)
    if not token:
        raise InvalidInputError("the trigger word is empty")
    if not photos:
        raise InvalidInputError("no photos to train on")
    if steps < 1 or rank < 1 or alpha <= 0 or learning_rate <= 0:
        raise InvalidInputError("steps, rank, alpha and learning_rate must be positive")
    device = engine.device
    res = resolution or default_resolution(device)
    if res < 32 or res % 32:
        raise InvalidInputError(f"resolution {res} is not possible: use a multiple of 32 (the VAE's downscale)")
    templates = tuple(captions or CAPTIONS)
    if any("{trigger}" not in t for t in templates):
        raise InvalidInputError("every caption template must contain {trigger}")
    ckpt_path = out_path.with_suffix(".ckpt.safetensors")
    report = on_progress or (lambda p: None)

    def check_cancel() -> None:
        if should_cancel is not None and should_cancel():
            raise JobCanceled("training canceled")

    start = time.perf_counter()
    best = best_photo(list(photos))
    held_out = _held_out_index(len(photos), best) if validation else None
    train_idx = [i for i in range(len(photos)) if i != held_out]
    # Generation takes the same exclusive use: the transformer is never half-adapted while a clip renders.
    with engine.exclusive("training"):
        ledger = engine.ledger.with_loras(())  # un-fuses any profile LoRA: train on the base weights
        model = ledger.transformer().velocity_model
        targets = _target_names(model)
        dtype = getattr(ledger, "dtype", torch.bfloat16)  # the pipelines' compute dtype (bf16)
        try:
            samples, held, contexts, positions = _encode(
                ledger, photos, train_idx, held_out, token, templates, res, seed, device, dtype, report, check_cancel
            )
            saved = _capture(model)
            try:
                _autograd_ready(model)
                _inject(model, targets, rank, alpha, seed)
                meta = _metadata(token, rank, alpha, res, seed, engine, len(train_idx), templates)
                losses, val_history = _train_loop(
                    model,
                    samples,
                    held,
                    contexts,
                    positions,
                    steps=steps,
                    learning_rate=learning_rate,
                    seed=seed,
                    device=device,
                    dtype=dtype,
                    checkpoint_every=checkpoint_every,
                    ckpt_path=ckpt_path,
                    report=report,
                    check_cancel=check_cancel,
                    meta=meta,
                )
                final_loss = _tail_mean(losses)
                report(TrainProgress("export", 0, 1, losses[-1], None, 0.0))
                meta.update(steps=str(steps), final_loss=f"{final_loss:.6f}", first_loss=f"{_head_mean(losses):.6f}")
                if val_history:
                    meta.update(
                        validation_loss=f"{val_history[-1][1]:.6f}", base_validation_loss=f"{val_history[0][1]:.6f}"
                    )
                _export(model, out_path, meta)
                report(TrainProgress("export", 1, 1, losses[-1], None, 0.0))
            finally:
                _restore(model, saved)
        except BaseException:
            ckpt_path.unlink(missing_ok=True)
            raise
        ckpt_path.unlink(missing_ok=True)  # the final file supersedes it
    return TrainResult(
        lora_path=out_path,
        steps=steps,
        losses=losses,
        final_loss=final_loss,
        validation_loss=val_history[-1][1] if val_history else None,
        first_loss_mean=_head_mean(losses),
        seconds=time.perf_counter() - start,
        best_photo=best,
        held_out=held_out,
        validation_losses=val_history,
    )


def _held_out_index(count: int, best: int) -> int | None:
    """With 4+ photos the last one not the best is held out (3 are the least worth training on)."""
    if count < 4:
        return None
    return count - 1 if best != count - 1 else count - 2


def _tail_mean(losses: list[float]) -> float:
    n = max(1, len(losses) // 10)
    return float(np.mean(losses[-n:]))


def _head_mean(losses: list[float]) -> float:
    n = max(1, len(losses) // 10)
    return float(np.mean(losses[:n]))


# --- data ----------------------------------------------------------------------------------------------


def _variants(photo: FacePhoto, rng: random.Random) -> list[Image.Image]:
    """The crop plus jittered re-crops from the original (a few % of scale and position)."""
    out = [photo.crop]
    for _ in range(VARIANTS_PER_PHOTO - 1):
        margin = CROP_MARGIN * rng.uniform(1 - JITTER_SCALE, 1 + JITTER_SCALE)
        shift = (rng.uniform(-JITTER_SHIFT, JITTER_SHIFT), rng.uniform(-JITTER_SHIFT, JITTER_SHIFT))
        out.append(face_crop(photo.full, photo.face_box, margin=margin, shift=shift))
    return out


def _pixels(image: Image.Image, res: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """[1, 3, 1, res, res] in [-1, 1], prepared with the pipelines' own helpers."""
    from ltx_pipelines.utils.media_io import normalize_latent, resize_and_center_crop

    # A high-quality downscale first: the library's bilinear resize aliases when shrinking a lot.
    small = image.convert("RGB").resize((res, res), Image.Resampling.LANCZOS)
    tensor = torch.tensor(np.asarray(small), dtype=torch.float32)
    return normalize_latent(resize_and_center_crop(tensor, res, res), device, dtype)


def _encode(ledger, photos, train_idx, held_out, token, templates, res, seed, device, dtype, report, check_cancel):
    """Latents (real VideoEncoder) and caption contexts (real text encoder), once per run."""
    from ltx_core.components.patchifiers import VideoLatentPatchifier
    from ltx_core.tools import VideoLatentTools
    from ltx_core.types import VideoLatentShape, VideoPixelShape
    from ltx_pipelines.utils.constants import VIDEO_LATENT_CHANNELS, VIDEO_SCALE_FACTORS
    from ltx_pipelines.utils.helpers import encode_prompts

    check_cancel()
    rng = random.Random(seed)
    images: list[tuple[Image.Image, int]] = []
    for n, i in enumerate(train_idx):
        for v, img in enumerate(_variants(photos[i], rng)):
            images.append((img, (n + v) % len(templates)))
    total = len(images) + (held_out is not None) + 1
    shape = VideoLatentShape.from_pixel_shape(
        VideoPixelShape(batch=1, frames=1, width=res, height=res, fps=FPS),
        latent_channels=VIDEO_LATENT_CHANNELS,
        scale_factors=VIDEO_SCALE_FACTORS,
    )
    tools = VideoLatentTools(VideoLatentPatchifier(patch_size=1), shape, FPS)

    # Inference mode: no graph through the frozen encoders. The results are cloned outside it, since
    # inference tensors cannot be saved for the backward pass.
    with torch.inference_mode():
        captions = [t.replace("{trigger}", token) for t in templates]
        encoded = encode_prompts(captions, ledger)
        contexts_inf = [e.video_encoding for e in encoded]
        report(TrainProgress("encode", 1, total))
        encoder = ledger.video_encoder()

        def latent(img: Image.Image) -> torch.Tensor:
            z = encoder(_pixels(img, res, device, dtype))
            return tools.create_initial_state(device, dtype, initial_latent=z.to(dtype)).latent

        latents_inf = []
        for k, (img, _) in enumerate(images):
            check_cancel()
            latents_inf.append(latent(img))
            report(TrainProgress("encode", k + 2, total))
        held_inf = latent(photos[held_out].crop) if held_out is not None else None
        positions_inf = tools.create_initial_state(device, dtype).positions
    if held_out is not None:
        report(TrainProgress("encode", total, total))
    samples = [_Sample(z.clone(), cap) for z, (_, cap) in zip(latents_inf, images)]
    held = _Sample(held_inf.clone(), 0) if held_inf is not None else None
    return samples, held, [c.clone() for c in contexts_inf], positions_inf.clone()


# --- model surgery -------------------------------------------------------------------------------------


def _target_names(model: torch.nn.Module) -> list[str]:
    """The modules the LoRA adapts; refuses layers peft or the upcast path cannot train."""
    pattern = re.compile(TARGET_MODULES)
    names = [n for n, _ in model.named_modules() if pattern.fullmatch(n)]
    if not names:
        raise TrainingUnsupportedError("no video attention projections found in the transformer")
    for name in names:
        module = model.get_submodule(name)
        if type(module) is not torch.nn.Linear:
            raise TrainingUnsupportedError(
                f"{name} is a {type(module).__name__}, not a plain Linear (fp8-scaled-mm?): LoRA training needs "
                "the bf16 or fp8-cast transformer; start the engine with quantization 'fp8-cast' or 'none'"
            )
        weight_dtype = module.weight.dtype
        if weight_dtype in (torch.float8_e4m3fn, torch.float8_e5m2) and not hasattr(module, "original_forward"):
            raise TrainingUnsupportedError(f"{name} holds float8 weights without ltx-core's upcasting forward")
    return names


def _capture(model: torch.nn.Module) -> _Saved:
    return _Saved(
        requires_grad={n: p.requires_grad for n, p in model.named_parameters()},
        training={n: m.training for n, m in model.named_modules()},
        attributes=set(vars(model)),
        checkpointing=getattr(model, "_enable_gradient_checkpointing", False),
    )


def _autograd_ready(model: torch.nn.Module) -> None:
    """Swap inference tensors for ordinary ones with the same values.

    A model first built inside `torch.inference_mode()` (the engine builds lazily, inside a generation)
    holds inference tensors, which autograd refuses to save for backward. Assigning `.data` is not enough
    (the tensor keeps no version counter), so each such Parameter is replaced by an ordinary copy, one at a
    time; shared parameters stay shared. Values are bit-identical and the swap is harmless for inference.
    """
    fresh: dict[int, torch.nn.Parameter] = {}
    with torch.no_grad():
        for module in model.modules():
            for name, param in list(module._parameters.items()):
                if param is not None and param.is_inference():
                    if id(param) not in fresh:
                        fresh[id(param)] = torch.nn.Parameter(param.detach().clone(), requires_grad=param.requires_grad)
                    module._parameters[name] = fresh[id(param)]
            for name, buffer in list(module._buffers.items()):
                if buffer is not None and buffer.is_inference():
                    module._buffers[name] = buffer.clone()


def _inject(model: torch.nn.Module, targets: list[str], rank: int, alpha: float, seed: int) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, bias="none")
    inject_adapter_in_model(config, model, adapter_name=ADAPTER)
    for param in model.parameters():
        param.requires_grad_(False)
    # peft casts adapters to the base layer's dtype (bf16 here, float8 on an fp8-cast host). Adapters are
    # kept in float32 instead, so small updates are not rounded away, and initialised with a seeded
    # generator (A: Kaiming-uniform like nn.Linear, B: zero, so training starts from the base model).
    generator = torch.Generator().manual_seed(seed)
    for _, module in _lora_layers(model):
        a, b = module.lora_A[ADAPTER], module.lora_B[ADAPTER]
        a.float()  # nn.Module.float() converts in place
        b.float()
        weight = torch.empty(a.weight.shape, dtype=torch.float32)
        torch.nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
        with torch.no_grad():
            a.weight.copy_(weight.to(a.weight.device))
            b.weight.zero_()
        a.weight.requires_grad_(True)
        b.weight.requires_grad_(True)


def _lora_layers(model: torch.nn.Module):
    from peft.tuners.lora import LoraLayer

    for name, module in model.named_modules():
        if isinstance(module, LoraLayer) and ADAPTER in module.lora_A:
            yield name, module


def _restore(model: torch.nn.Module, saved: _Saved) -> None:
    """Take the adapters out without merging and put every flag back."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for name, module in list(model.named_modules()):
        if isinstance(module, BaseTunerLayer):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.get_base_layer())
    for attribute in set(vars(model)) - saved.attributes:  # peft leaves its config on the model
        delattr(model, attribute)
    for name, param in model.named_parameters():
        param.requires_grad_(saved.requires_grad.get(name, param.requires_grad))
    for name, module in model.named_modules():
        module.training = saved.training.get(name, module.training)
    if hasattr(model, "set_gradient_checkpointing"):
        model.set_gradient_checkpointing(saved.checkpointing)


# --- training ------------------------------------------------------------------------------------------


def _use_gradient_checkpointing(device: torch.device) -> bool:
    """Recompute each block in backward on a GPU: activations (and the bf16 upcasts of fp8 weights, which
    F.linear keeps for backward) then live one block at a time. The tiny CPU model does not need it."""
    return device.type == "cuda"


def _forward_loss(model, x0, noise, sigma, context, positions, dtype):
    """Rectified-flow velocity loss for one sample, built like the pipelines build a Modality."""
    from ltx_core.model.transformer import Modality

    x0f, noisef = x0.float(), noise.float()
    x_t = (1.0 - sigma) * x0f + sigma * noisef
    tokens = x0.shape[1]
    video = Modality(
        latent=x_t.to(dtype),
        sigma=sigma.reshape(1).float(),
        timesteps=sigma.reshape(1, 1).float().expand(1, tokens),
        positions=positions,
        context=context,
        enabled=True,
        context_mask=None,
    )
    velocity, _ = model(video, None, None)  # audio=None: video-only forward (see module docstring)
    return torch.nn.functional.mse_loss(velocity.float(), noisef - x0f)


def _train_loop(
    model,
    samples,
    held,
    contexts,
    positions,
    *,
    steps,
    learning_rate,
    seed,
    device,
    dtype,
    checkpoint_every,
    ckpt_path,
    report,
    check_cancel,
    meta,
):
    cuda = device.type == "cuda"
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(seed)
    model.set_gradient_checkpointing(_use_gradient_checkpointing(device))
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()

    # Validation uses fixed noise and sigmas, so its losses are comparable across checks.
    val_generator = torch.Generator().manual_seed(seed + 1)
    val_noise = (
        [torch.randn(held.latent.shape, generator=val_generator).to(device) for _ in VALIDATION_SIGMAS]
        if held is not None
        else []
    )

    def validate() -> float:
        report(TrainProgress("validate", 0, 1, None, None, None))
        model.eval()
        total = 0.0
        with torch.no_grad(), autocast:
            for s, noise in zip(VALIDATION_SIGMAS, val_noise):
                sigma = torch.tensor(s, device=device)
                loss = _forward_loss(model, held.latent, noise, sigma, contexts[held.caption], positions, dtype)
                total += loss.item()
        model.train()
        loss = total / len(VALIDATION_SIGMAS)
        report(TrainProgress("validate", 1, 1, loss, None, None))
        return loss

    losses: list[float] = []
    val_history: list[tuple[int, float]] = []
    ema = 0.0
    order: list[int] = []
    if held is not None:  # the base model's score on the held-out photo, to compare the end against
        val_history.append((0, validate()))
    model.train()
    loop_start = time.perf_counter()
    for step in range(1, steps + 1):
        check_cancel()
        if not order:  # every sample once per epoch, in a seeded order
            order = torch.randperm(len(samples), generator=generator).tolist()
        sample = samples[order.pop()]
        sigma = torch.sigmoid(torch.randn(1, generator=generator)).to(device)
        noise = torch.randn(sample.latent.shape, generator=generator).to(device)
        with autocast:
            loss = _forward_loss(model, sample.latent, noise, sigma, contexts[sample.caption], positions, dtype)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss.item()} at step {step}: lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        optimizer.step()

        value = float(loss.item())
        losses.append(value)
        ema = EMA_BETA * ema + (1 - EMA_BETA) * value
        smoothed = ema / (1 - EMA_BETA**step)
        elapsed = time.perf_counter() - loop_start
        report(TrainProgress("train", step, steps, value, smoothed, elapsed / step * (steps - step)))

        if checkpoint_every and step % checkpoint_every == 0 and step < steps:
            if held is not None:
                val_history.append((step, validate()))
            _export(model, ckpt_path, {**meta, "steps": str(step), "checkpoint": "true"})
    if held is not None:
        val_history.append((steps, validate()))
    return losses, val_history


# --- export --------------------------------------------------------------------------------------------


def lora_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The adapters in ltx-core's layout: A [r, in], B·(alpha/r) [out, r], bf16.

    ltx-core fuses W + strength·(B @ A) and ignores any alpha, so the peft scaling is folded into B.
    """
    out: dict[str, torch.Tensor] = {}
    for name, module in _lora_layers(model):
        a = module.lora_A[ADAPTER].weight.detach().float()
        b = module.lora_B[ADAPTER].weight.detach().float() * module.scaling[ADAPTER]
        out[f"{LORA_PREFIX}{name}.lora_A.weight"] = a.to(torch.bfloat16).cpu().contiguous()
        out[f"{LORA_PREFIX}{name}.lora_B.weight"] = b.to(torch.bfloat16).cpu().contiguous()
    return out


def _metadata(token, rank, alpha, res, seed, engine, photos, templates) -> dict[str, str]:
    info = getattr(engine, "model_info", {}) or {}
    meta = {
        "format": "ltx-core lora: diffusion_model.<module>.lora_A/lora_B, alpha/rank folded into B",
        "trigger": token,
        "rank": rank,
        "alpha": alpha,
        "resolution": res,
        "seed": seed,
        "photos": photos,
        "captions": json.dumps(list(templates)),
        "target_modules": TARGET_MODULES,
        "base_model": info.get("model_version", ""),
        "base_checkpoint": Path(str(info.get("checkpoint", ""))).name,
    }
    return {k: str(v) for k, v in meta.items()}


def _export(model: torch.nn.Module, path: Path, metadata: dict[str, str]) -> None:
    """Write atomically: a temp file beside the target, then os.replace (never a half-written LoRA)."""
    from safetensors.torch import save_file

    tensors = lora_state_dict(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
