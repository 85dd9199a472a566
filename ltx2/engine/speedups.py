"""Levers on the resident engine: a prompt-embedding cache, a compiled transformer with an eager fallback, and a
tiled VAE decode that hands over each tile's finished frames at once.

Each wraps a method of a resident model instance, so ltx-pipelines' own pipeline code runs unchanged.
"""

from __future__ import annotations

import threading
import types
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator

import torch
from loguru import logger


class _Hidden(tuple):
    """Gemma's hidden states for one prompt, tagged with the prompt so the processor can store its result."""

    prompt: str | None = None


class _Cached(tuple):
    """Stands in for the hidden states of a prompt whose embeddings are cached (no Gemma pass was made)."""

    output = None


class PromptCache:
    """Same prompt, same resident text encoder → the embeddings of the last time, without a Gemma pass.

    The pipelines call `text_encoder.encode(prompt)` and then `embeddings_processor.process_hidden_states(...)`
    (ltx_pipelines.utils.helpers.encode_prompts). On a hit the first returns a stand-in and the second the stored
    embeddings; only the processed embeddings are kept (a few MB per prompt on the real model, where Gemma's raw
    hidden states of every layer would be hundreds). The engine never swaps its text encoder and LoRAs never touch
    it, so the prompt alone is the key. Retakes, finalize, re-runs and the fixed negative prompt all repeat prompts.
    """

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[str, object] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _get(self, prompt: str):
        with self._lock:
            output = self._entries.get(prompt)
            if output is not None:
                self._entries.move_to_end(prompt)
            return output

    def _put(self, prompt: str, output) -> None:
        with self._lock:
            self._entries[prompt] = output
            self._entries.move_to_end(prompt)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def wrap_text_encoder(self, encoder) -> None:
        inner = encoder.encode

        def encode(text, *args, **kwargs):
            output = self._get(text) if self.size and not args and not kwargs else None
            if output is not None:
                self.hits += 1
                stand_in = _Cached()
                stand_in.output = output
                return stand_in, None
            self.misses += 1
            hidden, mask = inner(text, *args, **kwargs)
            tagged = _Hidden(hidden)
            tagged.prompt = text if self.size and not args and not kwargs else None
            return tagged, mask

        encoder.encode = encode

    def wrap_embeddings_processor(self, processor) -> None:
        inner = processor.process_hidden_states

        def process_hidden_states(hidden, mask, *args, **kwargs):
            if isinstance(hidden, _Cached):
                # A copy: the pipeline owns what it is handed, the cache keeps its own.
                return _clone(hidden.output)
            output = inner(tuple(hidden), mask, *args, **kwargs)
            prompt = getattr(hidden, "prompt", None)
            if prompt is not None:
                self._put(prompt, _clone(output))
            return output

        processor.process_hidden_states = process_hidden_states


def _clone(output):
    """A copy of the processor's output (a NamedTuple of tensors, some None)."""
    values = [t.clone() if t is not None else None for t in output]
    return output._make(values) if hasattr(output, "_make") else type(output)(values)


ShapeKey = tuple


def shape_key(video, audio) -> ShapeKey:
    """What a compiled graph is specialised on: the token counts and widths of both modalities' inputs."""

    def one(modality):
        if modality is None:
            return None
        mask = modality.attention_mask
        return (
            tuple(modality.latent.shape),
            tuple(modality.context.shape),
            None if mask is None else tuple(mask.shape),
            modality.enabled,
        )

    return one(video), one(audio)


class CompiledTransformer:
    """The velocity model's forward, compiled for the shapes warmed at start, eager for any other.

    torch.compile specialises a graph per input shape and compiles a new one (seconds to minutes on the real
    model) the first time it sees a shape. A job must never pay that or fail on it: only shapes warmed inside
    `warming()` (the studio's size presets, at worker start) take the compiled path; a new shape runs eager and
    says so once in the log. If compiling fails, the wrapper falls back to eager for good.
    """

    def __init__(self, model: torch.nn.Module, backend: str = "inductor", mode: str | None = None):
        self.model = model
        self.backend = backend
        self.eager = model.forward
        self.compiled: Callable | None = None
        self.warm: set[ShapeKey] = set()
        self.failed: str | None = None
        self._warming = False
        self._logged: set[ShapeKey] = set()
        self.calls = {"compiled": 0, "eager": 0}
        try:
            self.compiled = torch.compile(self.eager, backend=backend, mode=mode, dynamic=False)
        except Exception as exc:  # noqa: BLE001 - no compiler here (e.g. no C++ toolchain): run eager
            self._give_up(exc)
        model.forward = self.forward

    def _give_up(self, exc: BaseException) -> None:
        self.failed = f"{exc.__class__.__name__}: {exc}"
        self.compiled = None
        logger.warning("transformer compile unavailable, running eager: {}", self.failed)

    def warming(self):
        """Within this block, every shape the transformer sees is compiled and remembered as warm."""
        wrapper = self

        class _Warming:
            def __enter__(self):
                wrapper._warming = True

            def __exit__(self, *exc):
                wrapper._warming = False

        return _Warming()

    def forward(self, video, audio, perturbations):
        key = shape_key(video, audio)
        if self.compiled is not None and (key in self.warm or self._warming):
            try:
                out = self.compiled(video, audio, perturbations)
            except Exception as exc:  # noqa: BLE001 - a compile error must not fail a job: eager from now on
                self._give_up(exc)
            else:
                if self._warming:
                    self.warm.add(key)
                self.calls["compiled"] += 1
                return out
        elif self.compiled is not None and key not in self._logged:
            self._logged.add(key)
            logger.info("transformer: shape {} was not compiled at start: running eager", key)
        self.calls["eager"] += 1
        return self.eager(video, audio, perturbations)


def parse_shapes(shapes: Iterable[str]) -> list[tuple[int, int, int]]:
    """'768x512x121' → (768, 512, 121): width, height, frames of a clip to warm the compiled transformer for."""
    out = []
    for text in shapes:
        parts = text.lower().split("x")
        if len(parts) != 3 or not all(p.strip().isdigit() for p in parts):
            raise ValueError(f"compile shape {text!r} is not WIDTHxHEIGHTxFRAMES, e.g. 768x512x121")
        out.append(tuple(int(p) for p in parts))
    return out


def early_tiled_decode(decoder, latent, tiling_config=None, timestep=None, generator=None) -> Iterator[torch.Tensor]:
    """ltx-core's `VideoDecoder.tiled_decode`, yielding a temporal tile's finished frames as soon as it is decoded.

    The library yields tile i's frames only after decoding tile i+1, although the frames before tile i+1's start
    take nothing from it: the encoder then gets 32 of a 121-frame clip's frames early and 89 at the very end. Here
    tile i's frames up to tile i+1's start go out right after tile i, so the encode of all but the last piece
    overlaps the decode. The arithmetic is the library's, on the same values, in the same order: the frames are
    bit-identical (test). Where three tiles would share a frame (overlap over half a tile) the library's own runs.
    """
    from ltx_core.types import VideoLatentShape

    tiles = decoder._prepare_tiles(latent, tiling_config)
    groups = decoder._group_tiles_by_temporal_slice(tiles)
    slices = [group[0].out_coords[2] for group in groups]
    if any(slices[i - 1].stop > slices[i + 1].start for i in range(1, len(slices) - 1)):
        yield from type(decoder).tiled_decode(decoder, latent, tiling_config, timestep, generator)
        return
    full = VideoLatentShape.from_torch_shape(latent.shape).upscale(decoder.video_downscale_factors)
    previous = previous_weights = None
    for i, (group, current) in enumerate(zip(groups, slices, strict=True)):
        buffer = torch.zeros(
            full._replace(frames=current.stop - current.start).to_torch_shape(),
            device=latent.device,
            dtype=latent.dtype,
        )
        weights = decoder._accumulate_temporal_group_into_buffer(
            group_tiles=group, buffer=buffer, latent=latent, timestep=timestep, generator=generator
        )
        if previous is not None and slices[i - 1].stop > current.start:  # blend the overlap with the last tile
            overlap = slices[i - 1].stop - current.start
            into = slice(current.start - slices[i - 1].start, None)
            previous[:, :, into] += buffer[:, :, :overlap]
            previous_weights[:, :, into] += weights[:, :, :overlap]
            buffer[:, :, :overlap] = previous[:, :, into]
            weights[:, :, :overlap] = previous_weights[:, :, into]
        # Finished: every frame before the next tile's start (all of them for the last tile).
        done = slices[i + 1].start - current.start if i + 1 < len(slices) else None
        yield (buffer / weights.clamp(min=1e-8))[:, :, :done]
        previous, previous_weights = buffer, weights


def hand_over_early(decoder: torch.nn.Module) -> None:
    """Make this resident video decoder's tiled decode `early_tiled_decode` (the ledger's build hook)."""
    decoder.tiled_decode = types.MethodType(early_tiled_decode, decoder)
