"""Warm end-to-end timing of the engine at the real LTX-2 19B + Gemma-3 12B sizes, without the weights.

    python bench/gpu_fullsize.py --sizes 768x512x121,512x512x121 --device cuda --repeat 1
    python bench/gpu_fullsize.py --meta-only                  # parameter counts only, no memory
    python bench/gpu_fullsize.py --tiny --device cpu --sizes 64x64x9   # same code path, tiny shapes

On a GPU host, everything issue 19 asks for in one command (warm levers stage by stage, the attention kernels,
then the cold start to READY with a warm and a cold page cache; needs ~50 GB of free disk):

    python bench/gpu_fullsize.py --device cuda --sizes 768x512x121 \
        --levers baseline,prompt-cache,compile,overlap,small-tiles,all --attention --json /tmp/warm.json \
        && python bench/gpu_fullsize.py --device cuda --cold --json /tmp/cold.json

Every model is built from its ltx-core configurator on the meta device, given storage on the target device
and filled with cheap random values there (no download, no disk reads). The LTX-2 transformer is stored the
way the engine's default CUDA quantization (`QuantizationPolicy.fp8_cast()`) loads it: block linears in
float8_e4m3fn, upcast per call. Only then is the real `Engine` created on the tiny checkpoint set (its ledger
re-points ltx-core's global Gemma config at the tiny Gemma root, which only affects builds after it) and the
full-size models are preloaded into its ledger, so the library's pipeline classes run unchanged and the tiny
files only supply metadata and the tokenizer.

Stage times partition the end-to-end wall time of one request (generate + MP4 encode):
  text encode  start → first transformer call (Gemma + embeddings processor + stage-1 setup)
  stage 1      first transformer call → last stage-1 step done (Progress callback)
  upsample     → first stage-2 transformer call (latent upsampler, memory cleanup, stage-2 noising)
  stage 2      → last stage-2 step done
  decode       → generate() returns (audio VAE + vocoder) plus the time spent pulling video chunks from the
               lazy VAE decoder (and copying them to the host)
  encode       the rest of the MP4 encode (x264 + AAC + mux)
On CUDA the clock synchronises the device at every boundary.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

try:
    from ltx2.settings import PROJECT_ROOT, Settings
except ImportError:  # run as a script: bench/ is sys.path[0], not the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ltx2.settings import PROJECT_ROOT, Settings

GOAL_SIZE = (768, 512, 121)
GOAL_SECONDS = 3.5  # issue 19: ≥ 1.4× real time for the 5.04 s clip
GOAL_GPU = "H100"
GOAL_COLD_S = 45.0
PROMPT = (
    "Close-up portrait of a woman looking into the camera in a softly lit studio. "
    'She smiles and says: "Hello there, welcome to the studio. Let me show you how this works."'
)

# ---------------------------------------------------------------------------------------------------------
# Full-size configs, in the release checkpoint's metadata format (what ltx-core's configurators read).
#
# Transformer: the "config"."transformer" section of the ltx-2-19b-dev.safetensors header, as quoted verbatim
# in a public ComfyUI-parity goldens generator (tools/gen_ltxav_model_goldens.py, found via the code index);
# cross-checked against diffusers scripts/convert_ltx2_to_diffusers.py (version "2.0": 48 layers, 32 x 128
# heads, cross_attention_dim 4096, caption_channels 3840, audio 32 x 64, audio_cross_attention_dim 2048) and
# the LTX-2 text-connector config there (30 heads x 128, 2 layers, 128 learnable registers, rope base 4096).
# Not in that header, so the configurator's default is used: audio_in_channels (128), apply_gated_attention
# and cross_attention_adaln (False, both LTX-2.3 additions). No caption_proj_before_connector key: that selects
# the 19B layout (caption projections inside the transformer, feature extractor V1).
FULL_TRANSFORMER_CONFIG = {
    # Values LTXModelConfigurator asserts.
    "dropout": 0.0,
    "attention_bias": True,
    "num_vector_embeds": None,
    "activation_fn": "gelu-approximate",
    "num_embeds_ada_norm": 1000,
    "use_linear_projection": False,
    "only_cross_attention": False,
    "cross_attention_norm": True,
    "double_self_attention": False,
    "upcast_attention": False,
    "standardization_norm": "rms_norm",
    "norm_elementwise_affine": False,
    "qk_norm": "rms_norm",
    "positional_embedding_type": "rope",
    "use_audio_video_cross_attention": True,
    "share_ff": False,
    "av_cross_ada_norm": True,
    "use_middle_indices_grid": True,
    # Sizes.
    "num_layers": 48,
    "num_attention_heads": 32,
    "attention_head_dim": 128,
    "in_channels": 128,
    "out_channels": 128,
    "cross_attention_dim": 4096,
    "caption_channels": 3840,
    "audio_num_attention_heads": 32,
    "audio_attention_head_dim": 64,
    "audio_out_channels": 128,
    "audio_cross_attention_dim": 2048,
    "attention_type": "default",
    "positional_embedding_theta": 10000.0,
    "positional_embedding_max_pos": [20, 2048, 2048],
    "audio_positional_embedding_max_pos": [20],
    "rope_type": "split",
    "frequencies_precision": "float64",
    "timestep_scale_multiplier": 1000,
    "av_ca_timestep_scale_multiplier": 1000.0,
    "norm_eps": 1e-06,
    "causal_temporal_positioning": True,
    "use_embeddings_connector": True,
    "connector_num_attention_heads": 30,  # 30 x 128 = 3840 = Gemma-3 12B hidden size
    "connector_attention_head_dim": 128,
    "connector_num_layers": 2,
    "connector_num_learnable_registers": 128,
    "connector_positional_embedding_max_pos": [4096],
    "connector_norm_output": True,
}

# Video VAE: block lists from the VAE test config in Lightricks' own ltx-core test suite (LTX-2 repo), which
# match the diffusers conversion of Lightricks/LTX-2 (vae/config.json: layers_per_block 4,6,6,2,2 with
# spatial/temporal/all/all downsampling; decoder 4 x 5 res layers with three residual x2 upsamplers,
# decoder_inject_noise all false, timestep_conditioning false, encoder padding zeros, decoder reflect).
# No "spatial_padding_mode" key: one key would set both sides, and the configurators' defaults (encoder
# zeros, decoder reflect) are the released ones. decoder_base_channels 128 is the configurator default and
# matches diffusers (conv_in to 1024 = 128 x 8).
FULL_VAE_CONFIG = {
    "dims": 3,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "patch_size": 4,
    "encoder_blocks": [
        ["res_x", {"num_layers": 4}],
        ["compress_space_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_time_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 6}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
        ["compress_all_res", {"multiplier": 2}],
        ["res_x", {"num_layers": 2}],
    ],
    "decoder_blocks": [
        ["res_x", {"num_layers": 5, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5, "inject_noise": False}],
        ["compress_all", {"residual": True, "multiplier": 2}],
        ["res_x", {"num_layers": 5, "inject_noise": False}],
    ],
    "decoder_base_channels": 128,
    "norm_layer": "pixel_norm",
    "latent_log_var": "uniform",
    "causal_decoder": False,
    "timestep_conditioning": False,
}

# Audio VAE: diffusers convert_ltx2_to_diffusers.py get_ltx2_audio_vae_config("2.0") (base 128, ch_mult 1,2,4,
# 2 res blocks, no attention, z 8, 64 mel bins, causal on height, 16 kHz, hop 160); the same ddconfig appears
# in the published LTX-2.3 header. STFT filter_length 1024 is the configurator default.
FULL_AUDIO_VAE_CONFIG = {
    "model": {
        "params": {
            "sampling_rate": 16000,
            "ddconfig": {
                "ch": 128,
                "ch_mult": [1, 2, 4],
                "num_res_blocks": 2,
                "attn_resolutions": [],
                "resolution": 256,
                "z_channels": 8,
                "double_z": True,
                "in_channels": 2,
                "out_ch": 2,
                "mel_bins": 64,
                "mid_block_add_attention": False,
                "norm_type": "pixel",
                "causality_axis": "height",
                "dropout": 0.0,
            },
        }
    },
    "preprocessing": {
        "stft": {"hop_length": 160, "filter_length": 1024, "causal": True},
        "mel": {"n_mel_channels": 64},
    },
}

# Vocoder: diffusers get_ltx2_vocoder_config("2.0") (HiFi-GAN style: 1024 initial channels, upsample 6,5,2,2,2
# with kernels 16,15,8,4,4, resblock kernels 3,7,11 with dilations 1,3,5, 24 kHz stereo). Identical to
# ltx-core's own defaults for the plain (non-BWE) vocoder.
FULL_VOCODER_CONFIG = {
    "upsample_initial_channel": 1024,
    "resblock_kernel_sizes": [3, 7, 11],
    "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
    "upsample_rates": [6, 5, 2, 2, 2],
    "upsample_kernel_sizes": [16, 15, 8, 4, 4],
    "resblock": "1",
    "stereo": True,
    "output_sampling_rate": 24000,
}

# x2 spatial upsampler (ltx-2-spatial-upscaler-x2-1.0): mid_channels 1024, 4 blocks per stage, per diffusers
# get_ltx2_spatial_latent_upsampler_config("2.0") and the FastVideo/LTX2-Diffusers spatial_upsampler config
# (which also gives rational_resampler true; at scale 2 that is conv + pixel shuffle + a stride-1 blur that
# is a no-op, the same compute as the plain pixel-shuffle head). The 512-channel x2 upsampler is LTX-Video
# 0.9.7/0.9.8's, not LTX-2's.
FULL_UPSAMPLER_CONFIG = {
    "in_channels": 128,
    "mid_channels": 1024,
    "num_blocks_per_stage": 4,
    "dims": 3,
    "spatial_upsample": True,
    "temporal_upsample": False,
    "spatial_scale": 2.0,
    "rational_resampler": True,
}

MODEL_NAMES = (
    "transformer",
    "video_encoder",
    "video_decoder",
    "audio_encoder",
    "audio_decoder",
    "vocoder",
    "spatial_upsampler",
    "embeddings_processor",
    "text_encoder",
)


@dataclass(frozen=True)
class ModelSet:
    """Everything needed to build one set of models: the checkpoint config, the upsampler's, Gemma's."""

    name: str
    checkpoint: dict
    upsampler: dict
    gemma: object  # ltx_core Gemma3ConfigData


def full_model_set() -> ModelSet:
    from ltx_core.text_encoders.gemma.config import Gemma3ConfigData

    checkpoint = {
        "transformer": FULL_TRANSFORMER_CONFIG,
        "vae": FULL_VAE_CONFIG,
        "audio_vae": FULL_AUDIO_VAE_CONFIG,
        "vocoder": FULL_VOCODER_CONFIG,
    }
    # Gemma-3 12B: ltx-core's built-in defaults are the 12B config it ships for LTX-2.
    return ModelSet("full", checkpoint, FULL_UPSAMPLER_CONFIG, Gemma3ConfigData())


def tiny_model_set() -> ModelSet:
    from ltx_core.text_encoders.gemma.config import Gemma3ConfigData

    from ltx2.engine import tiny

    gemma = Gemma3ConfigData()
    for key, value in tiny.GEMMA_TEXT_CONFIG.items():
        setattr(gemma.text_config, key, value)
    for key, value in tiny.GEMMA_VISION_CONFIG.items():
        setattr(gemma.vision_config, key, value)
    gemma.mm_tokens_per_image = tiny.GEMMA_MM_TOKENS_PER_IMAGE
    return ModelSet("tiny", tiny.full_config(), tiny.UPSAMPLER_CONFIG, gemma)


@contextmanager
def global_gemma_config(data):
    """Point ltx-core's global Gemma config (read by the text-encoder and feature-extractor builders) at `data`.

    The global is mutated in place because ltx-core modules imported it by name; it is restored afterwards,
    so whatever an Engine synced before or after is left alone.
    """
    from ltx_core.text_encoders.gemma.config import GEMMA3_CONFIG_FOR_LTX as cfg

    fields = [f.name for f in dataclasses.fields(cfg)]
    saved = {name: copy.deepcopy(getattr(cfg, name)) for name in fields}
    try:
        for name in fields:
            setattr(cfg, name, copy.deepcopy(getattr(data, name)))
        yield cfg
    finally:
        for name, value in saved.items():
            setattr(cfg, name, value)


# ---------------------------------------------------------------------------------------------------------
# Meta construction and random materialisation


def _fp8_dtype_for(name: str, tensor: torch.Tensor) -> torch.dtype:
    """The dtype the engine's fp8-cast policy stores this transformer tensor in (the library's own rule).

    The policy's state-dict op downcasts the block linears; everything else keeps the checkpoint's bf16.
    """
    from ltx_core.quantization import TRANSFORMER_LINEAR_DOWNCAST_MAP

    downcast = TRANSFORMER_LINEAR_DOWNCAST_MAP.apply_to_key_value(name, tensor)[0].new_value.dtype
    return downcast if downcast in (torch.float8_e4m3fn, torch.float8_e5m2) else torch.bfloat16


def _init_value(leaf: str, shape: torch.Size, dtype: torch.dtype, device: torch.device, gen: torch.Generator):
    """Cheap, scale-sane random values generated on the device (weights never touch host memory)."""
    # float8 has no RNG kernels: draw in bf16, then cast (one parameter's worth of temporary memory).
    draw = torch.bfloat16 if dtype in (torch.float8_e4m3fn, torch.float8_e5m2) else dtype
    if not draw.is_floating_point:
        return torch.zeros(shape, dtype=dtype, device=device)
    out = torch.empty(shape, dtype=draw, device=device)
    if leaf == "learnable_registers":
        out.uniform_(-1.0, 1.0, generator=gen)
    elif "scale_shift_table" in leaf:
        out.normal_(0.0, 0.02, generator=gen)
    elif len(shape) >= 2:
        # Fan-in scaling keeps 48-layer stacks of random bf16 weights finite.
        fan_in = max(1, math.prod(shape[1:]))
        out.normal_(0.0, fan_in**-0.5, generator=gen)
    elif leaf == "bias":
        out.zero_()
    else:
        out.fill_(1.0)
    return out.to(dtype)


def materialize(
    module: torch.nn.Module,
    device: torch.device,
    dtype: torch.dtype,
    dtype_for: Callable[[str, torch.Tensor], torch.dtype] | None = None,
    seed: int = 0,
) -> torch.nn.Module:
    """`to_empty(device)` + random init, for meta tensors only, one tensor at a time.

    Unlike `Module.to_empty`, tensors that already hold values (Gemma's rope/position buffers that
    `create_and_populate` computes on the CPU) are moved rather than emptied, each tensor gets its final
    dtype straight away (fp8 for the quantised linears), and tied parameters (Gemma's lm_head and
    embed_tokens) stay tied.
    """
    gen = torch.Generator(device=device).manual_seed(seed)
    done: dict[int, torch.Tensor] = {}
    with torch.no_grad():
        for prefix, sub in module.named_modules():
            for leaf, param in list(sub._parameters.items()):
                if param is None:
                    continue
                if id(param) not in done:
                    name = f"{prefix}.{leaf}" if prefix else leaf
                    if param.is_meta:
                        target = dtype_for(name, param) if dtype_for else dtype
                        if not param.dtype.is_floating_point:
                            target = param.dtype
                        data = _init_value(leaf, param.shape, target, device, gen)
                    else:
                        data = param.data.to(device)
                    done[id(param)] = torch.nn.Parameter(data, requires_grad=False)
                sub._parameters[leaf] = done[id(param)]
            for leaf, buf in list(sub._buffers.items()):
                if buf is None:
                    continue
                if not buf.is_meta:
                    sub._buffers[leaf] = buf.to(device)
                else:
                    # Checkpoint buffers load in the ledger's dtype, like the parameters.
                    target = dtype if buf.dtype.is_floating_point else buf.dtype
                    fill = torch.ones if leaf == "std-of-means" else torch.zeros  # mean-of-means and the rest
                    sub._buffers[leaf] = fill(buf.shape, dtype=target, device=device)
    return module


def meta_models(model_set: ModelSet, gemma_root: Path | None = None, fp8: bool = False) -> dict[str, torch.nn.Module]:
    """Every model of the set on the meta device, built the way the ledger's builders build them."""
    from ltx_core.model.audio_vae import AudioDecoderConfigurator, AudioEncoderConfigurator, VocoderConfigurator
    from ltx_core.model.transformer import LTXModelConfigurator
    from ltx_core.model.upsampler import LatentUpsamplerConfigurator
    from ltx_core.model.video_vae import VideoDecoderConfigurator, VideoEncoderConfigurator
    from ltx_core.quantization import QuantizationPolicy
    from ltx_core.text_encoders.gemma import (
        GEMMA_MODEL_OPS,
        EmbeddingsProcessorConfigurator,
        GemmaTextEncoderConfigurator,
        module_ops_from_gemma_root,
    )

    cfg = model_set.checkpoint
    models: dict[str, torch.nn.Module] = {}
    with torch.device("meta"):
        models["transformer"] = LTXModelConfigurator.from_config(cfg)
        models["video_encoder"] = VideoEncoderConfigurator.from_config(cfg)
        models["video_decoder"] = VideoDecoderConfigurator.from_config(cfg)
        models["audio_encoder"] = AudioEncoderConfigurator.from_config(cfg)
        models["audio_decoder"] = AudioDecoderConfigurator.from_config(cfg)
        models["vocoder"] = VocoderConfigurator.from_config(cfg)
        models["spatial_upsampler"] = LatentUpsamplerConfigurator.from_config(model_set.upsampler)
        # Both read the global Gemma config: the feature extractor's projection is sized from it.
        with global_gemma_config(model_set.gemma):
            models["embeddings_processor"] = EmbeddingsProcessorConfigurator.from_config(cfg)
            models["text_encoder"] = GemmaTextEncoderConfigurator.from_config(cfg)
    if fp8:
        # As the ledger does for a quantised transformer: the policy's module ops run on the meta model.
        for op in QuantizationPolicy.fp8_cast().module_ops:
            if op.matcher(models["transformer"]):
                models["transformer"] = op.mutator(models["transformer"])
    if gemma_root is not None:
        # The ledger's text-encoder module ops: rope/position buffers, then tokenizer and processor.
        encoder = models["text_encoder"]
        for op in (GEMMA_MODEL_OPS, *module_ops_from_gemma_root(str(gemma_root))):
            if op.matcher(encoder):
                encoder = op.mutator(encoder)
        models["text_encoder"] = encoder
    return models


def parameter_count(module: torch.nn.Module) -> int:
    # named_parameters() already drops tied duplicates (lm_head is embed_tokens).
    return sum(p.numel() for _, p in module.named_parameters())


def build_models(
    model_set: ModelSet, device: torch.device, gemma_root: Path, fp8: bool, seed: int = 0
) -> dict[str, torch.nn.Module]:
    """Full models with random weights on `device`, in the dtypes the engine's ledger would load them in."""
    from ltx_core.model.transformer import X0Model

    dtype = torch.bfloat16
    models = meta_models(model_set, gemma_root=gemma_root, fp8=fp8)
    built: dict[str, torch.nn.Module] = {}
    for index, name in enumerate(MODEL_NAMES):
        module = models.pop(name)  # drop the meta reference as we go
        dtype_for = _fp8_dtype_for if (name == "transformer" and fp8) else None
        module = materialize(module, device, dtype, dtype_for=dtype_for, seed=seed + index)
        if name == "transformer":
            module = X0Model(module)  # what ModelLedger.transformer() returns
        built[name] = module.eval()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return built


# ---------------------------------------------------------------------------------------------------------
# Timing


class StageClock:
    """Wall-clock marks at stage boundaries, synchronising the device first so a mark means 'work done'."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.marks: dict[str, float] = {}
        self.spans: dict[str, float] = {}

    def now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    def mark(self, name: str) -> None:
        if name not in self.marks:
            self.marks[name] = self.now()

    def add(self, name: str, seconds: float) -> None:
        self.spans[name] = self.spans.get(name, 0.0) + seconds


class Instrument:
    """Forward hooks on the resident models that feed the active StageClock (the library stays unmodified)."""

    def __init__(self, models: dict[str, torch.nn.Module]):
        self.clock: StageClock | None = None
        self.handles = []
        self._open: dict[str, float] = {}
        self.handles.append(models["transformer"].register_forward_pre_hook(self._transformer_call))
        # Detail spans: one call each per job, so the extra device syncs cost nothing measurable.
        spans = {
            "gemma_forward": models["text_encoder"].model.model,  # encode() calls the inner model directly
            "upsampler_forward": models["spatial_upsampler"],
            "audio_decoder_forward": models["audio_decoder"],
            "vocoder_forward": models["vocoder"],
        }
        for span, module in spans.items():
            self.handles.append(module.register_forward_pre_hook(self._opener(span)))
            self.handles.append(module.register_forward_hook(self._closer(span)))

    def _transformer_call(self, module, args):
        clock = self.clock
        if clock is None:
            return
        if "stage1_start" not in clock.marks:
            clock.mark("stage1_start")
        elif "stage1_end" in clock.marks and "stage2_start" not in clock.marks:
            clock.mark("stage2_start")

    def _opener(self, span: str):
        def hook(module, args):
            if self.clock is not None:
                self._open[span] = self.clock.now()

        return hook

    def _closer(self, span: str):
        def hook(module, args, output):
            if self.clock is not None and span in self._open:
                self.clock.add(span, self.clock.now() - self._open.pop(span))

        return hook

    def on_progress(self, progress) -> None:
        clock = self.clock
        if clock is None or progress.step != progress.total:
            return
        if progress.phase == "stage 1":
            clock.mark("stage1_end")
        elif progress.phase == "stage 2":
            clock.mark("stage2_end")

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _host_chunks(chunks: Iterator[torch.Tensor], clock: StageClock, shape: dict) -> Iterator[torch.Tensor]:
    """Pull decoded chunks, timing the VAE work (and the copy to host) apart from the encoder's."""
    frames = 0
    while True:
        start = clock.now()
        try:
            chunk = next(chunks)
        except StopIteration:
            clock.add("video_decode", clock.now() - start)
            break
        chunk = chunk.cpu()
        clock.add("video_decode", time.perf_counter() - start)
        frames += chunk.shape[0]
        shape["video"] = [frames, *chunk.shape[1:]]
        yield chunk


def _encoder(preset: str):
    """The project's single-pass MP4 encoder, or ltx-pipelines' own when ltx2.media is not there yet."""
    try:
        from ltx2.media import encode_mp4, encode_mp4_overlapped
    except ImportError:
        encode_mp4 = None

    if encode_mp4 is not None:

        def encode(chunks, fps, out_path, audio, overlapped=False):
            # overlapped: the encoder on its own thread, fed each chunk as the VAE finishes it (what render does)
            waveform = audio.waveform.float().cpu().numpy()
            (encode_mp4_overlapped if overlapped else encode_mp4)(
                chunks, fps, out_path, audio=waveform, sample_rate=audio.sampling_rate, preset=preset
            )

        return f"ltx2.media.encode_mp4 (x264 preset {preset})", encode

    from ltx_pipelines.utils.media_io import encode_video

    def encode(chunks, fps, out_path, audio, overlapped=False):
        encode_video(chunks, int(round(fps)), audio, str(out_path), video_chunks_number=1)

    return "ltx_pipelines.media_io.encode_video", encode


STAGES = ("text_encode", "stage_1", "upsample", "stage_2", "decode", "encode")


def timed_run(
    engine, instrument: Instrument, size: tuple[int, int, int], seed: int, fps: float, out_dir: Path, encode
) -> dict:
    from ltx2.engine.pipelines import GenerationRequest

    width, height, frames = size
    device = engine.device
    clock = StageClock(device)
    if clock.cuda:
        torch.cuda.reset_peak_memory_stats(device)
    request = GenerationRequest(prompt=PROMPT, seed=seed, width=width, height=height, num_frames=frames, fps=fps)
    shape: dict = {}
    instrument.clock = clock
    try:
        start = clock.now()
        result = engine.generate(request, on_progress=instrument.on_progress)
        generated = clock.now()
        encode_start = generated
        encode(_host_chunks(result.video, clock, shape), fps, out_dir / f"{width}x{height}x{frames}.mp4", result.audio)
        done = clock.now()
    finally:
        instrument.clock = None
    m = clock.marks
    missing = [k for k in ("stage1_start", "stage1_end", "stage2_start", "stage2_end") if k not in m]
    if missing:
        raise RuntimeError(f"stage boundaries not seen: {missing} (did the pipeline change?)")
    video_decode = clock.spans.get("video_decode", 0.0)
    stages = {
        "text_encode": m["stage1_start"] - start,
        "stage_1": m["stage1_end"] - m["stage1_start"],
        "upsample": m["stage2_start"] - m["stage1_end"],
        "stage_2": m["stage2_end"] - m["stage2_start"],
        "decode": (generated - m["stage2_end"]) + video_decode,
        "encode": (done - encode_start) - video_decode,
    }
    waveform = result.audio.waveform
    run = {
        "size": f"{width}x{height}x{frames}",
        "width": width,
        "height": height,
        "num_frames": frames,
        "stages": stages,
        "total": done - start,
        "detail": {k: v for k, v in clock.spans.items()},
        "video_shape": shape.get("video"),
        "audio_shape": list(waveform.shape),
        "audio_sample_rate": result.audio.sampling_rate,
    }
    if clock.cuda:
        run["peak_vram_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return run


# ---------------------------------------------------------------------------------------------------------
# Cold start: the full-size set written to disk in the release's layout, then `avatar worker` timed to READY

GEMMA_SHARD_BYTES = 5 * 2**30  # the Hugging Face release's shard size
DISTILLED_LORA_RANK = 384  # ltx-2-19b-distilled-lora-384
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")


def _release_checkpoint_tensors(models: dict[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """The models' weights under the release checkpoint's keys (what ltx-core's key ops map back)."""
    tensors: dict[str, torch.Tensor] = {}
    parts = {
        "video_encoder": "vae.encoder.",
        "video_decoder": "vae.decoder.",
        "audio_encoder": "audio_vae.encoder.",
        "audio_decoder": "audio_vae.decoder.",
        "vocoder": "vocoder.",
    }
    for key, value in models["transformer"].velocity_model.state_dict().items():
        tensors["model.diffusion_model." + key] = value
    for name, prefix in parts.items():
        for key, value in models[name].state_dict().items():
            if key.startswith("per_channel_statistics."):  # shared by encoder and decoder in the release
                tensors[prefix.split(".")[0] + "." + key] = value
            else:
                tensors[prefix + key] = value
    for key, value in models["embeddings_processor"].state_dict().items():
        key = key.replace("video_connector.", "model.diffusion_model.video_embeddings_connector.", 1)
        key = key.replace("audio_connector.", "model.diffusion_model.audio_embeddings_connector.", 1)
        key = key.replace("feature_extractor.aggregate_embed.", "text_embedding_projection.aggregate_embed.", 1)
        tensors[key] = value
    return tensors


def _save_cpu(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None) -> int:
    from safetensors.torch import save_file

    host = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    save_file(host, str(path), metadata=metadata)
    return path.stat().st_size


def write_release_set(
    root: Path, device: torch.device, tiny_gemma: Path, fp8: bool, seed: int = 0, model_set: ModelSet | None = None
) -> dict:
    """Random weights on disk in the release's layout: the (FP8) checkpoint with its config, the x2 upsampler,
    the distilled LoRA and a sharded Gemma root (tokenizer files from the tiny root). Full size by default."""
    import shutil

    model_set = model_set or full_model_set()
    root.mkdir(parents=True, exist_ok=True)
    paths = {
        "checkpoint": root / ("ltx-2-19b-distilled-fp8.safetensors" if fp8 else "ltx-2-19b-distilled.safetensors"),
        "spatial_upsampler": root / "ltx-2-spatial-upscaler-x2-1.0.safetensors",
        "distilled_lora": root / f"ltx-2-19b-distilled-lora-{DISTILLED_LORA_RANK}.safetensors",
        "gemma_root": root / "gemma-3-12b-it",
    }
    models = build_models(model_set, device, tiny_gemma, fp8=fp8, seed=seed)
    sizes = {}
    meta = {"model_version": "2.0.0", "config": json.dumps(model_set.checkpoint)}
    sizes["checkpoint"] = _save_cpu(_release_checkpoint_tensors(models), paths["checkpoint"], meta)
    sizes["spatial_upsampler"] = _save_cpu(
        models["spatial_upsampler"].state_dict(),
        paths["spatial_upsampler"],
        {"config": json.dumps(model_set.upsampler)},
    )
    # Gemma: Hugging Face keys, shards of GEMMA_SHARD_BYTES with an index, the 12B config.
    gemma_root = paths["gemma_root"]
    gemma_root.mkdir(exist_ok=True)
    hf = {}
    for key, value in models["text_encoder"].model.state_dict().items():
        if key.startswith("lm_head."):
            continue  # tied to embed_tokens
        if key.startswith("model.language_model."):
            key = "language_model.model." + key[len("model.language_model.") :]
        elif key.startswith("model."):
            key = key[len("model.") :]
        hf[key] = value
    del models
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, value in hf.items():
        nbytes = value.numel() * value.element_size()
        if size and size + nbytes > GEMMA_SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][key] = value
        size += nbytes
    weight_map, total = {}, 0
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        total += _save_cpu(shard, gemma_root / name, {"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    sizes["gemma_root"] = total
    (gemma_root / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    for item in tiny_gemma.iterdir():
        if item.is_file() and not item.name.endswith(".safetensors") and item.name != "config.json":
            shutil.copy(item, gemma_root / item.name)
    config = json.loads((tiny_gemma / "config.json").read_text())
    full = model_set.gemma.to_dict()
    config.update(text_config=full["text_config"], vision_config=full["vision_config"])
    config["mm_tokens_per_image"] = full["mm_tokens_per_image"]
    (gemma_root / "config.json").write_text(json.dumps(config, indent=2))
    del hf, shards
    # The distilled LoRA in the ComfyUI layout ltx-core loads.
    transformer = model_set.checkpoint["transformer"]
    inner = transformer["num_attention_heads"] * transformer["attention_head_dim"]
    gen = torch.Generator(device=device).manual_seed(seed)
    lora = {}
    for block in range(transformer["num_layers"]):
        for target in LORA_TARGETS:
            prefix = f"diffusion_model.transformer_blocks.{block}.attn1.{target}"
            a = torch.empty(DISTILLED_LORA_RANK, inner, device=device, dtype=torch.bfloat16)
            lora[f"{prefix}.lora_A.weight"] = a.normal_(0.0, inner**-0.5, generator=gen)
            lora[f"{prefix}.lora_B.weight"] = torch.zeros(
                inner, DISTILLED_LORA_RANK, device=device, dtype=torch.bfloat16
            )
    sizes["distilled_lora"] = _save_cpu(lora, paths["distilled_lora"])
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"paths": {k: str(v) for k, v in paths.items()}, "bytes": sizes}


def drop_page_cache() -> bool:
    """Write back and drop the page cache (root only); False where the kernel will not let us."""
    import os

    try:
        os.sync()
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def time_worker_ready(paths: dict, work: Path, quantization: str, timeout: float) -> dict:
    """`avatar worker` from process start to the READY it records in the job store."""
    import os
    import subprocess

    from ltx2.store.jobs import JobStore

    work.mkdir(parents=True, exist_ok=True)
    db = f"sqlite:///{work / 'outputs' / '.state' / 'avatar.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVATAR_")}
    env.update(
        AVATAR_CHECKPOINT=paths["checkpoint"],
        AVATAR_SPATIAL_UPSAMPLER=paths["spatial_upsampler"],
        AVATAR_DISTILLED_LORA=paths["distilled_lora"],
        AVATAR_GEMMA_ROOT=paths["gemma_root"],
        AVATAR_USE_VERIFIED="false",
        AVATAR_QUANTIZATION=quantization,
        AVATAR_OUTPUTS_DIR=str(work / "outputs"),
        AVATAR_TEMP_DIR=str(work / "temp"),
        AVATAR_DATABASE_URL=db,
        PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")])),
    )
    store = JobStore(db)
    store.migrate()
    log = work / f"worker-{time.time_ns()}.log"
    start = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ltx2.cli", "worker"], env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        ready = None
        while time.perf_counter() - start < timeout:
            if proc.poll() is not None:
                break
            states = {w.pid: w.state for w in store.workers()}
            if states.get(proc.pid) == "ready":
                ready = time.perf_counter() - start
                break
            if states.get(proc.pid) == "failed":
                break
            time.sleep(0.05)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        store.close()
    if ready is None:
        raise RuntimeError(f"the worker did not get READY:\n{log.read_text(errors='replace')[-3000:]}")
    return {"ready_s": ready, "log": str(log)}


def cold_start(args, device: torch.device, fp8: bool, tiny) -> dict:
    root = args.cold_dir or Path(tempfile.mkdtemp(prefix="cold-weights-"))
    print(f"writing random {'tiny' if args.tiny else 'full-size'} weights in the release layout to {root} ...")
    print("  (checkpoint in fp8 as the FP8 release)" if fp8 else "  (checkpoint in bf16)")
    start = time.perf_counter()
    model_set = tiny_model_set() if args.tiny else full_model_set()
    written = write_release_set(root / "weights", device, tiny.gemma_root, fp8=fp8, seed=args.seed, model_set=model_set)
    written["write_s"] = time.perf_counter() - start
    total = sum(written["bytes"].values())
    print(f"  {total / 2**30:.1f} GiB in {written['write_s']:.0f}s")
    quantization = "fp8-cast" if fp8 else "none"
    runs = {}
    for cache in args.cold_cache:
        dropped = drop_page_cache() if cache == "cold" else None
        if cache == "cold" and not dropped:
            runs[cache] = {"skipped": "could not drop the page cache (needs root on the host)"}
            print(f"  READY, cold page cache: skipped ({runs[cache]['skipped']})")
            continue
        runs[cache] = time_worker_ready(written["paths"], root / f"work-{cache}", quantization, args.cold_timeout)
        print(f"  READY from process start, {cache} page cache: {runs[cache]['ready_s']:.1f}s")
    return {"written": written, "ready": runs, "goal_s": GOAL_COLD_S}


# ---------------------------------------------------------------------------------------------------------
# CLI


def _parse_sizes(text: str) -> list[tuple[int, int, int]]:
    sizes = []
    for item in text.split(","):
        item = item.strip().lower()
        if not item:
            continue
        parts = item.split("x")
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"size {item!r} is not WIDTHxHEIGHTxFRAMES")
        sizes.append(tuple(int(p) for p in parts))
    if not sizes:
        raise argparse.ArgumentTypeError("no sizes given")
    return sizes


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--sizes",
        type=_parse_sizes,
        default=_parse_sizes("768x512x121,512x512x121"),
        help="comma-separated WIDTHxHEIGHTxFRAMES (default 768x512x121,512x512x121)",
    )
    p.add_argument("--device", default="auto", help="cuda, cpu or auto (default)")
    p.add_argument("--repeat", type=int, default=1, help="timed runs per size (default 1)")
    p.add_argument(
        "--warmup",
        type=int,
        default=1,
        help="untimed runs per size first (default 1): a new shape's first call pays kernel selection",
    )
    p.add_argument("--tiny", action="store_true", help="tiny configs from ltx2/engine/tiny.py, same code path")
    p.add_argument(
        "--quantization",
        choices=("auto", "none", "fp8-cast"),
        default="auto",
        help="transformer storage as the engine would load it; auto = fp8-cast on CUDA, none on CPU",
    )
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument(
        "--encode-preset",
        default=Settings.model_fields["encode_preset"].default,
        help="x264 preset of the MP4 encode (default: the server's default)",
    )
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--tiny-root",
        type=Path,
        default=PROJECT_ROOT / "models" / "tiny",
        help="where the tiny checkpoint set is (built on first use)",
    )
    p.add_argument("--meta-only", action="store_true", help="only build on the meta device and count parameters")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument(
        "--levers",
        type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
        default=["baseline"],
        help="comma-separated lever sets, each timed stage by stage: baseline (no prompt cache, eager, decode "
        "then encode), prompt-cache, compile (torch.compile warmed for --sizes), overlap (the encoder fed while "
        "the VAE decodes), small-tiles (overlap with 32/8-frame decode tiles), all (cache + compile + overlap; "
        "default baseline)",
    )
    p.add_argument(
        "--attention",
        action="store_true",
        help="profile one warm run and report which attention kernels SDPA actually ran (CUDA)",
    )
    p.add_argument(
        "--cold",
        action="store_true",
        help="instead of warm runs: write random full-size weights in the release's layout to disk, then time "
        "`avatar worker` from process start to READY",
    )
    p.add_argument("--cold-dir", type=Path, help="--cold: where to write the weights (default: a temp folder)")
    p.add_argument(
        "--cold-cache",
        type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
        default=["warm", "cold"],
        help="--cold: page-cache states to measure, warm and/or cold (cold drops caches; needs root)",
    )
    p.add_argument("--cold-timeout", type=float, default=540.0, help="--cold: seconds to wait for READY")
    return p


def _print_params(params: dict[str, int], title: str) -> None:
    print(f"{title}:")
    for name, count in params.items():
        print(f"  {name:<22}{count / 1e9:>9.3f} B  ({count:,})")


def _print_run(run: dict) -> None:
    line = "  ".join(f"{k} {v:6.2f}s" for k, v in run["stages"].items())
    vram = f"  peak VRAM {run['peak_vram_gib']:.1f} GiB" if "peak_vram_gib" in run else ""
    print(f"{run['size']:>12}: {line}  | total {run['total']:6.2f}s{vram}")
    detail = "  ".join(f"{k} {v:.2f}s" for k, v in run["detail"].items())
    print(f"{'':>12}  (within: {detail})")


def main(argv: list[str] | None = None) -> dict:
    args = _parser().parse_args(argv)
    from ltx2.engine.device import resolve_device

    model_set = tiny_model_set() if args.tiny else full_model_set()
    device = resolve_device(args.device)
    fp8 = args.quantization == "fp8-cast" or (args.quantization == "auto" and device.type == "cuda")
    report: dict = {"models": model_set.name, "device": str(device), "quantization": "fp8-cast" if fp8 else "none"}

    if args.meta_only:
        models = meta_models(model_set)
        report["params"] = {name: parameter_count(models[name]) for name in MODEL_NAMES}
        _print_params(report["params"], f"{model_set.name} models, meta device")
        _write(args.json, report)
        return report

    from ltx2.engine.pipelines import Engine, EngineWeights
    from ltx2.engine.tiny import ensure_tiny

    tiny = ensure_tiny(args.tiny_root)
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(device)
    if args.cold:
        report["cold"] = cold_start(args, device, fp8, tiny)
        _write(args.json, report)
        return report
    print(
        f"building {model_set.name} models with random weights on {device} "
        f"(transformer {'fp8-cast' if fp8 else 'bf16'}) ...",
        flush=True,
    )
    start = time.perf_counter()
    # Built before the Engine exists: its ledger re-syncs the global Gemma config to the tiny root.
    models = build_models(model_set, device, tiny.gemma_root, fp8=fp8, seed=args.seed)
    report["build_s"] = time.perf_counter() - start
    report["params"] = {name: parameter_count(models[name]) for name in MODEL_NAMES}
    if device.type == "cuda":
        report["resident_vram_gib"] = torch.cuda.memory_allocated(device) / 2**30
    _print_params(report["params"], f"built in {report['build_s']:.1f}s")
    if "resident_vram_gib" in report:
        print(f"  resident on {report['gpu']}: {report['resident_vram_gib']:.1f} GiB")

    compiling = any(lever in ("compile", "all") for lever in args.levers)
    engine = Engine(
        EngineWeights(tiny.checkpoint, tiny.gemma_root, tiny.spatial_upsampler, tiny.distilled_lora, tiny=args.tiny),
        device=str(device),
        quantization="fp8-cast" if fp8 else "none",
        compile_transformer=compiling,
    )
    for name, model in models.items():
        engine.ledger.preload(name, model)
    instrument = Instrument(models)
    name, encode = _encoder(args.encode_preset)
    report["encoder"] = name
    report["runs"] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-fullsize-") as tmp:
            out_dir = Path(tmp)
            if compiling:
                start = time.perf_counter()
                engine.warm_compiled(args.sizes)
                report["compile_warm_s"] = time.perf_counter() - start
                report["compile_failed"] = engine.compiled.failed
                print(f"compiled the transformer for {len(args.sizes)} size(s) in {report['compile_warm_s']:.1f}s")
            for lever in args.levers:
                lever_encode = _set_levers(engine, lever, encode)
                print(f"levers: {lever}")
                for size in args.sizes:
                    for _ in range(args.warmup):
                        timed_run(engine, instrument, size, args.seed, args.fps, out_dir, lever_encode)
                    for _ in range(args.repeat):
                        run = timed_run(engine, instrument, size, args.seed, args.fps, out_dir, lever_encode)
                        run["levers"] = lever
                        report["runs"].append(run)
                        _print_run(run)
            if args.attention:
                report["attention"] = attention_kernels(engine, instrument, args.sizes[0], args, out_dir, encode)
    finally:
        instrument.remove()
    if engine.ledger.builds:
        raise RuntimeError(f"the ledger built {engine.ledger.builds} model(s) from the tiny files: missing preload")

    report["goal"] = _goal(report, args)
    print(report["goal"]["text"])
    if len(args.levers) > 1:
        _print_levers(report["runs"])
    _write(args.json, report)
    return report


LEVERS = ("baseline", "prompt-cache", "compile", "overlap", "small-tiles", "all")
SMALL_TILES = (32, 8)  # temporal decode tiles (frames, overlap) of the small-tiles lever; the release's are 64/24


def _set_levers(engine, lever: str, encode):
    """Turn the engine's levers on or off for the next runs (compiled graphs are kept, only bypassed); returns
    the encode to time them with (overlap, small-tiles and all feed the encoder while the VAE decodes)."""
    from ltx_core.model.video_vae import TemporalTilingConfig

    if lever not in LEVERS:
        raise ValueError(f"unknown lever set {lever!r}: use {', '.join(LEVERS)}")
    tiles = SMALL_TILES if lever == "small-tiles" else (64, 24)
    engine.tiling = dataclasses.replace(engine.tiling, temporal_config=TemporalTilingConfig(*tiles))
    cache = lever in ("prompt-cache", "all")
    engine.prompt_cache.size = 16 if cache else 0
    engine.prompt_cache.clear()
    wrapper = engine.compiled
    if wrapper is not None:
        if not hasattr(wrapper, "saved"):
            wrapper.saved = wrapper.compiled
        wrapper.compiled = wrapper.saved if lever in ("compile", "all") else None
    return functools.partial(encode, overlapped=lever in ("overlap", "small-tiles", "all"))


def _print_levers(runs: list[dict]) -> None:
    print("stage seconds by lever set:")
    print(f"{'size':>12} {'levers':>13}  " + "".join(f"{s:>12}" for s in (*STAGES, "total")))
    for run in runs:
        cells = [run["stages"][s] for s in STAGES] + [run["total"]]
        print(f"{run['size']:>12} {run.get('levers', ''):>13}  " + "".join(f"{v:12.3f}" for v in cells))


def attention_kernels(engine, instrument, size, args, out_dir: Path, encode) -> dict:
    """Which attention implementation really runs: ltx-core's choice (xformers if installed, else PyTorch
    SDPA) and, under the profiler, the SDPA/attention kernels of one warm run with their device time."""
    from ltx_core.model.transformer import attention as ltx_attention
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if engine.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        timed_run(engine, instrument, size, args.seed, args.fps, out_dir, encode)
    words = ("attention", "flash", "fmha", "sdpa", "cudnn_sdp", "efficient")
    kernels = {}
    for event in prof.key_averages():
        if any(w in event.key.lower() for w in words):
            device_us = getattr(event, "device_time_total", None) or getattr(event, "cuda_time_total", 0)
            kernels[event.key] = {
                "calls": event.count,
                "device_ms": device_us / 1000,
                "cpu_ms": event.cpu_time_total / 1000,
            }
    ranked = dict(sorted(kernels.items(), key=lambda kv: -(kv[1]["device_ms"] or kv[1]["cpu_ms"])))
    out = {
        "ltx_core_backend": "xformers" if ltx_attention.memory_efficient_attention is not None else "pytorch SDPA",
        "flash_attention_3_installed": ltx_attention.flash_attn_interface is not None,
        "kernels": ranked,
    }
    if engine.device.type == "cuda":
        b = torch.backends.cuda
        out["sdpa_enabled"] = {
            "flash": b.flash_sdp_enabled(),
            "mem_efficient": b.mem_efficient_sdp_enabled(),
            "cudnn": b.cudnn_sdp_enabled(),
            "math": b.math_sdp_enabled(),
        }
    print(f"attention: ltx-core uses {out['ltx_core_backend']}; kernels seen (top 8 by time):")
    for key, value in list(ranked.items())[:8]:
        print(f"  {value['calls']:>6} x {key[:90]:<90} device {value['device_ms']:.1f} ms cpu {value['cpu_ms']:.1f} ms")
    return out


def _goal(report: dict, args) -> dict:
    goal_size = "x".join(str(v) for v in GOAL_SIZE)
    totals = [r["total"] for r in report["runs"] if r["size"] == goal_size]
    goal = {"size": goal_size, "seconds": GOAL_SECONDS, "gpu": GOAL_GPU, "met": None}
    if not totals:
        goal["text"] = f"goal: <= {GOAL_SECONDS:.1f} s end to end at {goal_size} on an {GOAL_GPU} (size not run)"
        return goal
    best = min(totals)
    goal["total"] = best
    goal["median"] = statistics.median(totals)
    if args.tiny or not report["device"].startswith("cuda"):
        goal["text"] = (
            f"goal: <= {GOAL_SECONDS:.1f} s end to end at {goal_size} on an {GOAL_GPU}: "
            f"not applicable ({report['models']} models on {report['device']}, {best:.2f} s)"
        )
        return goal
    goal["met"] = best <= GOAL_SECONDS
    gpu = report.get("gpu", "?")
    caveat = "" if GOAL_GPU in gpu else f" (measured on {gpu}, not an {GOAL_GPU})"
    goal["text"] = (
        f"goal: <= {GOAL_SECONDS:.1f} s end to end at {goal_size} on an {GOAL_GPU}: "
        f"{'MET' if goal['met'] else 'NOT MET'} with {best:.2f} s{caveat}"
    )
    return goal


def _write(path: Path | None, report: dict) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
