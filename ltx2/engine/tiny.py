"""A tiny, deterministic LTX-2 checkpoint set in the release's file formats.

The real weights (~50 GB) cannot be fetched on CI or development machines, so the project builds this set
and runs the real ltx-pipelines code on it (CPU, seconds per clip). The files have the same layout and
metadata as the release: one safetensors file holding transformer, video VAE, audio VAE and vocoder under
the release's key prefixes with the JSON config in its metadata, a separate spatial-upsampler file, a
distilled-LoRA file and a Gemma root (weights in the original layout, tokenizer, image processor).

Every build writes the same bytes: parameters come from a fixed-seed generator in sorted-name order, except
the video VAE's, which are trained (scripts/train_tiny_vae.py) and shipped beside this module, so that decoded
frames are pictures: a reference photo appears at frame 0 and tests can check it. The transformer stays random.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from ltx2.domain.digest import sha256_file

TINY_MARKER = "avatar-generator-tiny"
TINY_VERSION = "4"
# The digest of every build (tree_digest). Version 4: the video VAE is trained (TRAINED_VIDEO_VAE); its decoder
# has 16 base channels (was 4; 128 channels at the latent, 8 at the patches), its encoder's last block is 256
# wide. Version 3 had dropped the audio VAE's per-level residual blocks.
TINY_DIGEST = "9a1ee7171caabb7ea577a722acdd7c5f654db8940291c385974561d13ac28039"
_SEED = 20261125
# Still-image kernels of the trained video VAE (each 3-D kernel as the sum of its temporal taps), written by
# scripts/train_tiny_vae.py; `place_still_kernels` turns them into the 3-D kernels the checkpoint holds.
TRAINED_VIDEO_VAE = Path(__file__).with_name("tiny_vae.safetensors")

# Hard-coded elsewhere in ltx-core and so not shrinkable: latent channels 128, audio z 8 with 16 mel bins,
# mel_bins 64, audio VAE ch 128, 16 kHz audio with hop 160, 24 kHz vocoder output.
TRANSFORMER_CONFIG = {
    # LTXModelConfigurator asserts these exact values.
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
    # Tiny sizes. Video inner dim 48 is divisible by 6 (three-axis rope).
    "num_layers": 2,
    "num_attention_heads": 2,
    "attention_head_dim": 24,
    "in_channels": 128,
    "out_channels": 128,
    "cross_attention_dim": 48,
    "caption_channels": 64,
    "audio_num_attention_heads": 2,
    "audio_attention_head_dim": 16,
    "audio_in_channels": 128,
    "audio_out_channels": 128,
    "audio_cross_attention_dim": 32,
    "positional_embedding_max_pos": [20, 2048, 2048],
    "audio_positional_embedding_max_pos": [20],
    "rope_type": "split",
    "frequencies_precision": "float64",
    "timestep_scale_multiplier": 1000,
    "av_ca_timestep_scale_multiplier": 1000,
    "norm_eps": 1e-6,
    # Text connectors: inner dim (heads x head dim) must equal the Gemma hidden size.
    "connector_num_attention_heads": 2,
    "connector_attention_head_dim": 32,
    "connector_num_layers": 1,
    "connector_positional_embedding_max_pos": [4096],
}

VAE_CONFIG = {
    "dims": 3,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 128,
    "patch_size": 4,
    # The last block doubles the width (256) so each 32-pixel block can carry 4-pixel luma and 8-pixel colour.
    "encoder_blocks": [["compress_all_res", {"multiplier": 1}]] * 2 + [["compress_all_res", {"multiplier": 2}]],
    # Built in reverse: 128 channels at the latent, 64, 16, then 8 at the 4-pixel patches (what the trained
    # weights use); narrowing early keeps the decode cheap.
    "decoder_blocks": [
        ["compress_all", {"multiplier": 2}],
        ["compress_all", {"multiplier": 4}],
        ["compress_all", {"multiplier": 2}],
    ],
    "decoder_base_channels": 16,
    "norm_layer": "pixel_norm",
    "latent_log_var": "uniform",
    "causal_decoder": False,
    "timestep_conditioning": False,
}

AUDIO_VAE_CONFIG = {
    "model": {
        "params": {
            "sampling_rate": 16000,
            "ddconfig": {
                "ch": 128,
                "ch_mult": [1, 1, 1],
                "num_res_blocks": 0,
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

VOCODER_CONFIG = {
    "upsample_initial_channel": 32,
    "resblock_kernel_sizes": [3],
    "resblock_dilation_sizes": [[1, 3, 5]],
    "upsample_rates": [6, 5, 2, 2, 2],
    "upsample_kernel_sizes": [16, 15, 8, 4, 4],
    "resblock": "1",
    "stereo": True,
    "output_sampling_rate": 24000,
}

UPSAMPLER_CONFIG = {
    "in_channels": 128,
    "mid_channels": 32,  # GroupNorm(32) needs a multiple of 32
    "num_blocks_per_stage": 1,
    "dims": 3,
    "spatial_upsample": True,
    "temporal_upsample": False,
    "spatial_scale": 2.0,
    "rational_resampler": False,
}

GEMMA_TEXT_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 32,
    "query_pre_attn_scalar": 32,
    "vocab_size": 512,
    "max_position_embeddings": 2048,
    "sliding_window": 512,
    "sliding_window_pattern": 2,
}
GEMMA_VISION_CONFIG = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "image_size": 28,
    "patch_size": 14,
}
GEMMA_MM_TOKENS_PER_IMAGE = 1

# The LoRA layout ltx-core fuses, trained-LoRA style: attention projections of every block.
LORA_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
DISTILLED_LORA_RANK = 4


@dataclass(frozen=True)
class TinyPaths:
    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / "ltx-2-tiny.safetensors"

    @property
    def spatial_upsampler(self) -> Path:
        return self.root / "ltx-2-tiny-spatial-upscaler-x2.safetensors"

    @property
    def distilled_lora(self) -> Path:
        return self.root / "ltx-2-tiny-distilled-lora.safetensors"

    @property
    def gemma_root(self) -> Path:
        return self.root / "gemma-tiny"

    @property
    def stamp(self) -> Path:
        return self.root / "TINY_BUILD.json"


def full_config() -> dict:
    return {
        "transformer": TRANSFORMER_CONFIG,
        "vae": VAE_CONFIG,
        "audio_vae": AUDIO_VAE_CONFIG,
        "vocoder": VOCODER_CONFIG,
    }


def _init_(module: torch.nn.Module, generator: torch.Generator) -> None:
    """Deterministic init: fan-in-scaled normal matrices, unit norms, zero biases, sorted by name."""
    for name, param in sorted(module.named_parameters(), key=lambda kv: kv[0]):
        with torch.no_grad():
            data = torch.empty(param.shape, dtype=torch.float32)
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "learnable_registers":
                data.uniform_(-1.0, 1.0, generator=generator)
            elif leaf == "scale_shift_table" or "scale_shift_table" in leaf:
                data.normal_(0.0, 0.02, generator=generator)
            elif param.dim() >= 2:
                fan_in = param[0].numel()
                data.normal_(0.0, fan_in**-0.5, generator=generator)
            elif leaf == "bias":
                data.zero_()
            else:
                data.fill_(1.0)
            param.data = data.to(param.dtype)


def _materialise(module: torch.nn.Module) -> torch.nn.Module:
    """Configurators build some sub-modules on the meta device; give those real (empty) storage."""
    if any(p.is_meta for p in module.parameters()) or any(b.is_meta for b in module.buffers()):
        module.to_empty(device="cpu")
    return module


def _set_statistics(module: torch.nn.Module) -> None:
    for name, buf in module.named_buffers():
        if name.endswith("std-of-means"):
            buf.fill_(1.0)
        elif name.endswith("mean-of-means"):
            buf.zero_()


def _component_state(module: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}{k}": v.detach().to(torch.bfloat16).contiguous() for k, v in module.state_dict().items()}


def _build_checkpoint_tensors(generator: torch.Generator, trained_video_vae: bool = True) -> dict[str, torch.Tensor]:
    from ltx_core.model.audio_vae import AudioDecoderConfigurator, AudioEncoderConfigurator, VocoderConfigurator
    from ltx_core.model.transformer import LTXModelConfigurator
    from ltx_core.model.video_vae import VideoDecoderConfigurator, VideoEncoderConfigurator
    from ltx_core.text_encoders.gemma import EmbeddingsProcessorConfigurator

    config = full_config()
    tensors: dict[str, torch.Tensor] = {}
    parts = [
        (LTXModelConfigurator, "model.diffusion_model."),
        (VideoEncoderConfigurator, "vae.encoder."),
        (VideoDecoderConfigurator, "vae.decoder."),
        (AudioEncoderConfigurator, "audio_vae.encoder."),
        (AudioDecoderConfigurator, "audio_vae.decoder."),
        (VocoderConfigurator, "vocoder."),
    ]
    with _gemma_config(GEMMA_TEXT_CONFIG):
        processor = _materialise(EmbeddingsProcessorConfigurator.from_config(config))
    _init_(processor, generator)
    for key, value in processor.state_dict().items():
        # Release layout: connectors live under the diffusion model, the V1 projection beside it.
        key = key.replace("video_connector.", "model.diffusion_model.video_embeddings_connector.", 1)
        key = key.replace("audio_connector.", "model.diffusion_model.audio_embeddings_connector.", 1)
        key = key.replace("feature_extractor.aggregate_embed.", "text_embedding_projection.aggregate_embed.", 1)
        tensors[key] = value.detach().to(torch.bfloat16).contiguous()

    for configurator, prefix in parts:
        module = _materialise(configurator.from_config(config))
        _init_(module, generator)
        _set_statistics(module)
        if trained_video_vae and configurator in (VideoEncoderConfigurator, VideoDecoderConfigurator):
            load_trained_video_vae(module, prefix)
        state = _component_state(module, prefix)
        # Per-channel statistics are shared by encoder and decoder under one prefix in the release.
        for key in list(state):
            for side in ("vae.encoder.", "vae.decoder.", "audio_vae.encoder.", "audio_vae.decoder."):
                if key.startswith(f"{side}per_channel_statistics."):
                    shared = side.split(".")[0] + "." + key[len(side) :]
                    state[shared] = state.pop(key)
        tensors.update(state)
    return tensors


def load_trained_video_vae(module: torch.nn.Module, prefix: str, path: Path | None = None) -> None:
    """Load the shipped still-image weights into a VideoEncoder (prefix "vae.encoder.") or VideoDecoder."""
    from safetensors.torch import load_file

    still = load_file(str(path or TRAINED_VIDEO_VAE))
    own = {k[len(prefix) :]: v for k, v in still.items() if k.startswith(prefix)}
    own.update({k[len("vae.") :]: v for k, v in still.items() if k.startswith("vae.per_channel_statistics.")})
    place_still_kernels(module, own, causal=prefix == "vae.encoder.")


def place_still_kernels(module: torch.nn.Module, still: dict[str, torch.Tensor], causal: bool) -> None:
    """Set a video VAE side from still-image weights: every 3-D kernel from its 2-D sum over temporal taps.

    On a still picture every tap sees the same frame, so only the sum is trained. The sum goes to the current
    frame's tap (the encoder is causal: taps t-2, t-1, t) or the centre tap (the decoder: t-1, t, t+1), so frame
    0 decodes from latent frame 0 alone. The decoder's temporal upsamplers also make the frames that fall between
    two latent frames, which a still never shows: they get the on-grid kernel split over both neighbours, so
    video between latent frames is a blend in the decoder's feature space from one picture to the next.
    """
    from ltx_core.model.video_vae.convolution import CausalConv3d
    from ltx_core.model.video_vae.sampling import DepthToSpaceUpsample

    state = module.state_dict()
    if set(state) != set(still):
        raise ValueError(f"{TRAINED_VIDEO_VAE.name} does not match VAE_CONFIG: retrain (scripts/train_tiny_vae.py)")
    state = {k: v.to(torch.float32).clone() for k, v in still.items()}
    for name, sub in module.named_modules():
        if not isinstance(sub, CausalConv3d):
            continue
        key = f"{name}.conv.weight"
        summed = state[key]
        kernel = torch.zeros(summed.shape[:2] + (sub.time_kernel_size,) + summed.shape[2:])
        kernel[:, :, -1 if causal else sub.time_kernel_size // 2] = summed
        state[key] = kernel
    for name, sub in module.named_modules():
        if isinstance(sub, DepthToSpaceUpsample) and sub.stride[0] == 2:
            weight, bias = state[f"{name}.conv.conv.weight"], state[f"{name}.conv.conv.bias"]
            per = sub.stride[0] * sub.stride[1] * sub.stride[2]  # output channels are (c p1 p2 p3); p1=0 between
            for start in range(0, weight.shape[0], per):
                between, on_grid = slice(start, start + per // 2), slice(start + per // 2, start + per)
                weight[between] = 0
                weight[between, :, 0] = weight[between, :, 1] = weight[on_grid, :, 1] / 2
                bias[between] = bias[on_grid]
    for key, value in state.items():
        if value.shape != module.state_dict()[key].shape:
            raise ValueError(f"{TRAINED_VIDEO_VAE.name}: {key} has shape {tuple(value.shape)}: retrain")
    module.load_state_dict(state)


class _gemma_config:
    """Temporarily point ltx-core's global Gemma config at a given text config (see engine.ledger)."""

    def __init__(self, text_config: dict, vision_config: dict | None = None, mm_tokens: int | None = None):
        self.text = text_config
        self.vision = vision_config or {}
        self.mm_tokens = mm_tokens
        self.saved: dict = {}

    def __enter__(self):
        from ltx_core.text_encoders.gemma.config import GEMMA3_CONFIG_FOR_LTX as cfg

        self.saved = {
            "text": {k: getattr(cfg.text_config, k) for k in self.text},
            "vision": {k: getattr(cfg.vision_config, k) for k in self.vision},
            "mm": cfg.mm_tokens_per_image,
        }
        for k, v in self.text.items():
            setattr(cfg.text_config, k, v)
        for k, v in self.vision.items():
            setattr(cfg.vision_config, k, v)
        if self.mm_tokens is not None:
            cfg.mm_tokens_per_image = self.mm_tokens
        return cfg

    def __exit__(self, *exc):
        from ltx_core.text_encoders.gemma.config import GEMMA3_CONFIG_FOR_LTX as cfg

        for k, v in self.saved["text"].items():
            setattr(cfg.text_config, k, v)
        for k, v in self.saved["vision"].items():
            setattr(cfg.vision_config, k, v)
        cfg.mm_tokens_per_image = self.saved["mm"]


def _save(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """save_file, then rewrite its JSON header with sorted keys.

    safetensors serialises the header from a hash map, so key order (and so the file's bytes) changes from
    run to run; the tensor data itself is laid out deterministically. A canonical header makes builds
    byte-identical.
    """
    save_file(tensors, str(path), metadata=metadata)
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    canonical = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    canonical += b" " * (-len(canonical) % 8)  # the format pads the header to 8-byte alignment
    path.write_bytes(len(canonical).to_bytes(8, "little") + canonical + raw[8 + size :])


def _metadata(extra: dict | None = None) -> dict[str, str]:
    meta = {"model_version": "2.0.0-tiny", "avatar_tiny": TINY_MARKER, "avatar_tiny_version": TINY_VERSION}
    if extra:
        meta.update(extra)
    return meta


def _build_upsampler(generator: torch.Generator) -> dict[str, torch.Tensor]:
    from ltx_core.model.upsampler import LatentUpsamplerConfigurator

    module = _materialise(LatentUpsamplerConfigurator.from_config(UPSAMPLER_CONFIG))
    _init_(module, generator)
    return {k: v.detach().to(torch.bfloat16).contiguous() for k, v in module.state_dict().items()}


def _build_distilled_lora(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """A LoRA in the ComfyUI layout ltx-core loads (`diffusion_model.<module>.lora_{A,B}.weight`)."""
    inner = TRANSFORMER_CONFIG["num_attention_heads"] * TRANSFORMER_CONFIG["attention_head_dim"]
    out: dict[str, torch.Tensor] = {}
    for block in range(TRANSFORMER_CONFIG["num_layers"]):
        for target in LORA_TARGETS:
            prefix = f"diffusion_model.transformer_blocks.{block}.attn1.{target}"
            a = torch.empty(DISTILLED_LORA_RANK, inner).normal_(0.0, inner**-0.5, generator=generator)
            b = torch.empty(inner, DISTILLED_LORA_RANK).normal_(0.0, 0.05, generator=generator)
            out[f"{prefix}.lora_A.weight"] = a.to(torch.bfloat16)
            out[f"{prefix}.lora_B.weight"] = b.to(torch.bfloat16)
    return out


def _gemma_hf_config() -> dict:
    from ltx_core.text_encoders.gemma.config import Gemma3ConfigData

    data = Gemma3ConfigData().to_dict()
    data["text_config"].update(GEMMA_TEXT_CONFIG)
    data["vision_config"].update(GEMMA_VISION_CONFIG)
    data["mm_tokens_per_image"] = GEMMA_MM_TOKENS_PER_IMAGE
    return data


def _build_gemma(root: Path, generator: torch.Generator) -> None:
    from transformers import Gemma3Config
    from transformers.models.gemma3 import Gemma3ForConditionalGeneration

    root.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer(root)
    hf_config = _gemma_hf_config()
    # Token ids of the image tokens come from the tokenizer we just trained.
    hf_config["boi_token_index"] = tokenizer.convert_tokens_to_ids("<start_of_image>")
    hf_config["eoi_token_index"] = tokenizer.convert_tokens_to_ids("<end_of_image>")
    hf_config["image_token_index"] = tokenizer.convert_tokens_to_ids("<image_soft_token>")
    hf_config["eos_token_id"] = [tokenizer.eos_token_id]
    with torch.device("cpu"):
        model = Gemma3ForConditionalGeneration(Gemma3Config.from_dict(hf_config))
    _init_(model, generator)
    weights: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        if key.startswith("lm_head."):
            continue  # tied to embed_tokens; the loader recreates it
        if key.startswith("model.language_model."):
            key = "language_model.model." + key[len("model.language_model.") :]
        elif key.startswith("model."):
            key = key[len("model.") :]
        weights[key] = value.detach().to(torch.bfloat16).contiguous()
    _save(weights, root / "model.safetensors", metadata={"format": "pt", "avatar_tiny": TINY_MARKER})
    (root / "config.json").write_text(json.dumps(hf_config, indent=2, sort_keys=True) + "\n")
    (root / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "Gemma3ImageProcessor",
                "processor_class": "Gemma3Processor",
                "size": {"height": 28, "width": 28},
                "do_resize": True,
                "do_rescale": True,
                "rescale_factor": 1 / 255,
                "do_normalize": True,
                "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.5, 0.5, 0.5],
                "do_convert_rgb": True,
                "resample": 2,
                "do_pan_and_scan": False,
            },
            indent=2,
            sort_keys=True,
        )
        + "\n"
    )


_TOKENIZER_CORPUS = (
    "A person looks into the camera and says hello there, welcome to the studio. "
    "The woman speaks clearly in a calm, warm voice. The man smiles and talks about the weather today. "
    "Close-up portrait, soft studio lighting, neutral background, natural head movement, lip sync. "
    "She says: thank you for watching, see you next time. He says: let me show you how this works. "
    "blurry, out of focus, distorted, low quality, artifacts, robotic voice, echo, background noise. "
    "0 1 2 3 4 5 6 7 8 9 , . ! ? ' \" : ; - ( ) "
)


def _build_tokenizer(root: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GemmaTokenizerFast

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_image>", "<end_of_image>", "<image_soft_token>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=GEMMA_TEXT_CONFIG["vocab_size"],
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_TOKENIZER_CORPUS] * 4, trainer=trainer)
    fast = GemmaTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={
            "image_token": "<image_soft_token>",
            "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
        },
    )
    fast.save_pretrained(str(root))
    # ltx-core finds the tokenizer folder by globbing for this SentencePiece file name; the fast tokenizer
    # above is what transformers actually loads, so the file only marks the folder.
    (root / "tokenizer.model").write_bytes(b"avatar-generator tiny tokenizer: see tokenizer.json\n")
    return fast


def tree_digest(root: Path) -> str:
    """One digest over every file of a tiny set (names and bytes), stamp excluded."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != "TINY_BUILD.json"):
        h.update(str(path.relative_to(root)).encode())
        h.update(sha256_file(path).encode())
    return h.hexdigest()


def build_tiny(root: Path, trained_video_vae: bool = True) -> TinyPaths:
    """Write the whole tiny set into `root` (atomically: a half-built folder is never left behind).

    `trained_video_vae=False` keeps the video VAE random too (the benchmark's baseline; not the pinned set).
    """
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tiny-", dir=root.parent))
    try:
        paths = TinyPaths(staging)
        generator = torch.Generator().manual_seed(_SEED)
        with torch.no_grad():
            _save(
                _build_checkpoint_tensors(generator, trained_video_vae),
                paths.checkpoint,
                metadata=_metadata({"config": json.dumps(full_config(), sort_keys=True)}),
            )
            _save(
                _build_upsampler(generator),
                paths.spatial_upsampler,
                metadata=_metadata({"config": json.dumps(UPSAMPLER_CONFIG, sort_keys=True)}),
            )
            _save(_build_distilled_lora(generator), paths.distilled_lora, metadata=_metadata())
            _build_gemma(paths.gemma_root, generator)
        paths.stamp.write_text(
            json.dumps({"marker": TINY_MARKER, "version": TINY_VERSION, "digest": tree_digest(staging)}, indent=2)
            + "\n"
        )
        for path in staging.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        staging.chmod(0o755)
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return TinyPaths(root)


def is_built(root: Path) -> bool:
    paths = TinyPaths(Path(root))
    try:
        stamp = json.loads(paths.stamp.read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("marker") == TINY_MARKER and stamp.get("version") == TINY_VERSION


def ensure_tiny(root: Path) -> TinyPaths:
    """Build the tiny set on first use; later calls only check its stamp."""
    if not is_built(root):
        return build_tiny(root)
    return TinyPaths(Path(root))


def is_tiny_checkpoint(path: str | Path) -> bool:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("avatar_tiny") == TINY_MARKER
    except Exception:  # noqa: BLE001 - an unreadable file is simply not ours
        return False
