"""A ModelLedger that keeps every model resident and switches LoRAs in place.

ltx-pipelines' ModelLedger builds a fresh model (reading its weights from disk) on every call; the pipelines
call it once per stage of every job. For a server that is the difference between seconds and minutes per job
on the real 19B weights, so this ledger builds each component once and hands the same instance back.

LoRAs (a face profile, the distilled LoRA of two-stage runs) are fused into the resident transformer in place
with ltx-core's own `apply_loras` on just the touched weights, after restoring the originals of whatever was
fused before. The base model is never rebuilt or re-read to switch.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from ltx_core.loader import LoraPathStrengthAndSDOps, LoraStateDictWithStrength, StateDict, apply_loras
from ltx_core.loader.sft_loader import SafetensorsStateDictLoader
from ltx_core.quantization import QuantizationPolicy
from ltx_pipelines.utils.model_ledger import ModelLedger

_GEMMA_TOP_KEYS = ("mm_tokens_per_image", "boi_token_index", "eoi_token_index", "image_token_index")


def sync_gemma_config(gemma_root: str | Path) -> None:
    """Make ltx-core's global Gemma config match the Gemma root being loaded.

    ltx-core builds the text encoder (and sizes the feature-extractor projection) from a hard-coded
    Gemma-3 12B config. Copying the root's own config.json over it keeps both consistent; for the real
    12B root the values are the same and nothing changes.
    """
    from ltx_core.text_encoders.gemma.config import GEMMA3_CONFIG_FOR_LTX as cfg
    from ltx_core.utils import find_matching_file

    try:
        data = json.loads(find_matching_file(str(gemma_root), "config.json").read_text())
    except (FileNotFoundError, ValueError):
        return
    for section, target in (("text_config", cfg.text_config), ("vision_config", cfg.vision_config)):
        for key, value in (data.get(section) or {}).items():
            if hasattr(target, key) and key != "rope_scaling":
                setattr(target, key, value)
    for key in _GEMMA_TOP_KEYS:
        if key in data:
            setattr(cfg, key, data[key])


@dataclass
class _Resident:
    """What every view of one ledger shares: built models and the LoRA state of the transformer."""

    models: dict[str, torch.nn.Module] = field(default_factory=dict)
    lora_cache: dict[tuple[str, int, int], StateDict] = field(default_factory=dict)
    fused: tuple[tuple[str, float], ...] = ()
    originals: dict[str, torch.Tensor] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    builds: int = 0
    # name → what to do to a model once it is built (the engine's prompt cache and compiled transformer).
    on_build: dict[str, Callable[[torch.nn.Module], None]] = field(default_factory=dict)
    building: dict[str, threading.Lock] = field(default_factory=dict)  # one per model being built


class ResidentLedger(ModelLedger):
    """ModelLedger whose model methods return one resident instance each (see module docstring)."""

    def __init__(
        self,
        dtype: torch.dtype,
        device: torch.device,
        checkpoint_path: str | None = None,
        gemma_root_path: str | None = None,
        spatial_upsampler_path: str | None = None,
        loras: tuple[LoraPathStrengthAndSDOps, ...] = (),
        quantization: QuantizationPolicy | None = None,
        compute_dtype: torch.dtype | None = None,
    ):
        if gemma_root_path is not None:
            sync_gemma_config(gemma_root_path)
        # The base builders never carry LoRAs: they are fused in place per view (see transformer()).
        super().__init__(
            dtype=dtype,
            device=device,
            checkpoint_path=checkpoint_path,
            gemma_root_path=gemma_root_path,
            spatial_upsampler_path=spatial_upsampler_path,
            loras=(),
            quantization=quantization,
        )
        self.loras = tuple(loras)
        self._resident = _Resident()
        # The pipelines hand every model bf16 tensors. On a CPU without native bf16 each bf16 matmul and
        # convolution is emulated (about 25x slower); there models keep float32 weights and compute in float32,
        # and only their inputs and outputs are cast at the boundary, so the library code runs unchanged.
        self.compute_dtype = compute_dtype or dtype

    # Views share builders and residents; only the LoRA set differs.
    def with_loras(self, loras: tuple[LoraPathStrengthAndSDOps, ...]) -> ResidentLedger:
        view = copy.copy(self)
        view.loras = tuple(loras)
        return view

    @property
    def builds(self) -> int:
        """How many models this ledger has built (each build reads weights from disk)."""
        return self._resident.builds

    def on_build(self, name: str, hook: Callable[[torch.nn.Module], None]) -> None:
        """Call `hook(model)` once when the model `name` is built (before any pipeline sees it)."""
        self._resident.on_build[name] = hook

    def preload(self, name: str, model: torch.nn.Module) -> None:
        """Make an already-built model resident (benchmarks build random full-size models this way)."""
        hook = self._resident.on_build.get(name)
        if hook is not None:
            hook(model)
        self._resident.models[name] = model

    def _get(self, name: str, build) -> torch.nn.Module:
        resident = self._resident
        with resident.lock:
            model = resident.models.get(name)
            if model is not None:
                return model
            building = resident.building.setdefault(name, threading.Lock())
        # One lock per model, so two models can load at once (warm_up) while one is never built twice.
        with building:
            with resident.lock:
                model = resident.models.get(name)
            if model is not None:
                return model
            model = build()
            # An fp8 transformer upcasts per layer already; its float8 weights stay as they are.
            fp8 = name == "transformer" and self.quantization is not None
            if self.compute_dtype != self.dtype and not fp8:
                target = model.velocity_model if name == "transformer" else model
                _compute_in(target, self.compute_dtype, self.dtype, _ENTRY_POINTS.get(name, ("forward",)))
            hook = resident.on_build.get(name)
            if hook is not None:
                hook(model)
            with resident.lock:
                resident.models[name] = model
                resident.builds += 1
            return model

    def transformer(self):
        model = self._get("transformer", super().transformer)
        with self._resident.lock:
            self._fuse(model, self.loras)
            return model

    def video_decoder(self):
        return self._get("video_decoder", super().video_decoder)

    def video_encoder(self):
        return self._get("video_encoder", super().video_encoder)

    def text_encoder(self):
        return self._get("text_encoder", super().text_encoder)

    def gemma_embeddings_processor(self):
        return self._get("embeddings_processor", super().gemma_embeddings_processor)

    def audio_encoder(self):
        return self._get("audio_encoder", super().audio_encoder)

    def audio_decoder(self):
        return self._get("audio_decoder", super().audio_decoder)

    def vocoder(self):
        return self._get("vocoder", super().vocoder)

    def spatial_upsampler(self):
        return self._get("spatial_upsampler", super().spatial_upsampler)

    def warm_up(self, *, audio_encoder: bool = True) -> None:
        """Build every component now, so the first job pays no load time. The two big ones, Gemma and the
        transformer (12B and 19B on the real weights), load at the same time: reading one file while the
        other's tensors are copied to the device."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1, thread_name_prefix="load-text-encoder") as pool:
            text_encoder = pool.submit(self.text_encoder)
            self.transformer()
            text_encoder.result()
        self.gemma_embeddings_processor()
        self.video_encoder()
        self.video_decoder()
        self.audio_decoder()
        self.vocoder()
        if getattr(self, "upsampler_builder", None) is not None:
            self.spatial_upsampler()
        if audio_encoder:
            self.audio_encoder()

    # --- in-place LoRA switching -------------------------------------------------------------------------

    def _lora_state(self, lora: LoraPathStrengthAndSDOps) -> StateDict:
        path = Path(lora.path)
        stat = path.stat()
        key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        cached = self._resident.lora_cache.get(key)
        if cached is None:
            cached = SafetensorsStateDictLoader().load(str(path), sd_ops=lora.sd_ops, device=torch.device("cpu"))
            self._resident.lora_cache = {k: v for k, v in self._resident.lora_cache.items() if k[0] != key[0]}
            self._resident.lora_cache[key] = cached
        return cached

    def _fuse(self, model: torch.nn.Module, loras: tuple[LoraPathStrengthAndSDOps, ...]) -> None:
        wanted = tuple((str(Path(lo.path).resolve()), float(lo.strength)) for lo in loras)
        resident = self._resident
        if wanted == resident.fused:
            return
        # fp8-scaled-mm keeps weight scales as buffers beside the weights.
        params = {**dict(model.velocity_model.named_buffers()), **dict(model.velocity_model.named_parameters())}
        with torch.no_grad():
            # Back to the base weights first, then fuse the new set on top.
            for name, original in resident.originals.items():
                params[name].data.copy_(original)
            resident.originals = {}
            resident.fused = ()
            states = [LoraStateDictWithStrength(self._lora_state(lo), lo.strength) for lo in loras if lo.strength]
            touched = sorted(
                {
                    k[: -len(".lora_A.weight")] + ".weight"
                    for s in states
                    for k in s.state_dict.sd
                    if k.endswith(".lora_A.weight")
                }
            )
            missing = [name for name in touched if name not in params]
            if missing:
                raise LoraMismatchError(
                    f"LoRA does not fit this model: {len(missing)} target weight(s) not found, e.g. {missing[0]}"
                )
            if touched:
                # ltx-core fuses into bf16 or fp8 weights only: a float32 model fuses a bf16 copy (the same
                # numbers, since its weights were loaded from bf16) and stores the result back as float32.
                base = {name: _fusable(params[name].data, self.dtype) for name in touched}
                for name in touched:
                    scale = name.replace(".weight", ".weight_scale")
                    if scale in params:
                        base[scale] = params[scale].data
                fused = apply_loras(
                    model_sd=StateDict(base, next(iter(base.values())).device, 0, set()),
                    lora_sd_and_strengths=states,
                    dtype=None,
                )
                for name, value in fused.sd.items():
                    if name not in resident.originals:
                        resident.originals[name] = params[name].data.clone()
                    params[name].data.copy_(value.to(params[name].dtype))
        resident.fused = wanted


def _fusable(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return weight.to(dtype) if weight.dtype == torch.float32 else weight


def _cast(value, src: torch.dtype, dst: torch.dtype):
    """`value` with every `src` tensor in it (also inside tuples, lists, dicts and dataclasses) cast to `dst`."""
    if isinstance(value, torch.Tensor):
        return value.to(dst) if value.dtype == src else value
    if isinstance(value, (tuple, list)):
        cast = [_cast(v, src, dst) for v in value]
        return type(value)(cast) if not hasattr(value, "_fields") else type(value)(*cast)
    if isinstance(value, dict):
        return {k: _cast(v, src, dst) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _cast(getattr(value, f.name), src, dst) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value


# The methods through which the pipelines hand tensors to each model (the text models are not called as
# modules: the pipelines call `encode` and `process_hidden_states`).
_ENTRY_POINTS = {"text_encoder": ("encode",), "embeddings_processor": ("process_hidden_states",)}


def _compute_in(model: torch.nn.Module, compute: torch.dtype, io: torch.dtype, methods=("forward",)) -> None:
    """Run `model` in `compute` while its callers keep passing and receiving `io` tensors.

    The instance's methods are wrapped rather than hooked: the library also calls `self.forward` directly
    (the video decoder's tiled decode), which module hooks would miss.
    """
    model.to(compute)
    for name in methods:
        inner = getattr(model, name)

        def entry(*args, _inner=inner, **kwargs):
            return _cast(_inner(*_cast(args, io, compute), **_cast(kwargs, io, compute)), compute, io)

        setattr(model, name, entry)


class LoraMismatchError(ValueError):
    """The LoRA's target weights are not in this transformer (wrong base model)."""
