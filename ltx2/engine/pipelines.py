"""The engine: ltx-pipelines' own pipeline classes, run on one resident ledger.

Three modes, each the library's class:
- text → video + speech, distilled (default): `DistilledPipeline` (8 + 3 steps, no guidance);
- text → video + speech, two-stage (quality): `TI2VidTwoStagesPipeline` (guided stage 1, distilled-LoRA stage 2);
- audio → video (the user's own voice): `A2VidPipelineTwoStage`.
A reference image conditions frame 0 in every mode; optional keyframe anchors repeat it at later frames.
The pipelines are built once; per job only their ledgers are swapped for views with the job's LoRAs.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import torch
from ltx_core.loader import LTXV_LORA_COMFY_RENAMING_MAP, LoraPathStrengthAndSDOps
from ltx_core.model.video_vae import TemporalTilingConfig, TilingConfig
from ltx_core.quantization import QuantizationPolicy
from ltx_core.types import Audio
from ltx_pipelines.a2vid_two_stage import A2VidPipelineTwoStage
from ltx_pipelines.distilled import DistilledPipeline
from ltx_pipelines.ti2vid_two_stages import TI2VidTwoStagesPipeline
from ltx_pipelines.utils.args import ImageConditioningInput
from ltx_pipelines.utils.constants import DISTILLED_SIGMA_VALUES, STAGE_2_DISTILLED_SIGMA_VALUES, detect_params
from safetensors import safe_open

from ltx2.domain.errors import InvalidInputError, OutOfMemoryError
from ltx2.domain.limits import side_problem
from ltx2.engine import progress
from ltx2.engine.device import apply_cpu_shims, compute_dtype, resolve_device
from ltx2.engine.ledger import ResidentLedger
from ltx2.engine.speedups import CompiledTransformer, PromptCache, hand_over_early

Mode = Literal["distilled", "two-stage"]
MAX_FRAMES = 481  # 20 s at 24 fps: LTX-2's longest clip


@dataclass(frozen=True)
class EngineWeights:
    checkpoint: Path
    gemma_root: Path
    spatial_upsampler: Path
    distilled_lora: Path | None = None
    tiny: bool = False


@dataclass
class GenerationRequest:
    prompt: str
    negative_prompt: str = ""
    seed: int = 42
    width: int = 768
    height: int = 512
    num_frames: int = 121
    fps: float = 24.0
    mode: Mode = "distilled"
    image: Path | None = None
    image_strength: float = 1.0
    # Continuity: a frame (the previous segment's last) conditioning frame 0 instead of `image`, which then
    # anchors later keyframes so the face does not drift from the reference over a long script.
    first_frame: Path | None = None
    keyframe_anchors: int = 0
    anchor_strength: float = 0.5
    audio: Path | None = None
    audio_start: float = 0.0
    lora: Path | None = None
    lora_strength: float = 1.0
    steps: int | None = None  # stage-1 steps of the guided pipelines (two-stage, audio)


@dataclass
class GenerationResult:
    video: Iterator[torch.Tensor]  # uint8 chunks [f, h, w, 3], decoded lazily by the VAE as they are read
    audio: Audio
    request: GenerationRequest
    pipeline: str
    tiny: bool
    timings: dict[str, float] = field(default_factory=dict)


def validate(request: GenerationRequest) -> None:
    """Raise InvalidInputError for anything the pipelines would reject or choke on."""
    if not request.prompt or not request.prompt.strip():
        raise InvalidInputError("the prompt is empty")
    for name, value in (("width", request.width), ("height", request.height)):
        problem = side_problem(name, value)
        if problem:
            raise InvalidInputError(problem)
    if request.num_frames < 9 or request.num_frames > MAX_FRAMES or (request.num_frames - 1) % 8:
        raise InvalidInputError(f"num_frames {request.num_frames} is not possible: use 8k+1 between 9 and {MAX_FRAMES}")
    if not 1.0 <= request.fps <= 60.0:
        raise InvalidInputError(f"fps {request.fps} is outside 1–60")
    if not 0.0 <= request.image_strength <= 1.0 or not 0.0 <= request.anchor_strength <= 1.0:
        raise InvalidInputError("image strengths are LTX-2 conditioning strengths and must lie in 0–1")
    if request.keyframe_anchors < 0 or request.keyframe_anchors > 8:
        raise InvalidInputError("keyframe_anchors must be between 0 and 8")
    if request.keyframe_anchors and request.image is None:
        raise InvalidInputError("keyframe anchors repeat the reference image: give an image too")
    if request.mode not in ("distilled", "two-stage"):
        raise InvalidInputError(f"unknown mode {request.mode!r}: use distilled or two-stage")
    if request.steps is not None and not 1 <= request.steps <= 100:
        raise InvalidInputError("steps must be between 1 and 100")
    for image in (request.image, request.first_frame):
        if image is not None:
            _check_image(Path(image))
    if request.audio is not None and not Path(request.audio).is_file():
        raise InvalidInputError(f"audio file not found: {request.audio}")
    if request.lora is not None and not Path(request.lora).is_file():
        raise InvalidInputError(f"LoRA file not found: {request.lora}")


def _check_image(path: Path) -> None:
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InvalidInputError(f"image file not found: {path}")
    try:
        with Image.open(path) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise InvalidInputError(f"{path.name} is not an image Pillow can read ({exc.__class__.__name__})") from exc


def _quantization(name: str, device: torch.device) -> QuantizationPolicy | None:
    if name == "auto":
        return QuantizationPolicy.fp8_cast() if device.type == "cuda" else None
    if name == "none":
        return None
    if name == "fp8-cast":
        return QuantizationPolicy.fp8_cast()
    if name == "fp8-scaled-mm":
        return QuantizationPolicy.fp8_scaled_mm()
    raise ValueError(f"unknown quantization {name!r}")


class Engine:
    """Owns the resident models; runs one generation at a time."""

    def __init__(
        self,
        weights: EngineWeights,
        device: str = "auto",
        quantization: str = "auto",
        lora_strength: float = 1.0,
        cpu_dtype: str = "auto",
        cpu_threads: int = 0,
        prompt_cache_size: int = 16,
        compile_transformer: bool = False,
        compile_backend: str = "inductor",
        decode_tile: tuple[int, int] = (64, 24),
    ):
        self.weights = weights
        # The release's tiling with the temporal tiles (frames, overlap) as configured (ltx2.settings).
        self.tiling = replace(TilingConfig.default(), temporal_config=TemporalTilingConfig(*decode_tile))
        self.device = resolve_device(device)
        self.compute_dtype = compute_dtype(self.device, cpu_dtype)
        if self.device.type == "cpu" and (cpu_threads or weights.tiny):
            torch.set_num_threads(cpu_threads or 1)
        apply_cpu_shims()
        progress.install()
        self.quantization = _quantization(quantization, self.device)
        self.ledger = ResidentLedger(
            dtype=torch.bfloat16,  # what the pipelines pass between models
            compute_dtype=self.compute_dtype,
            device=self.device,
            checkpoint_path=str(weights.checkpoint),
            gemma_root_path=str(weights.gemma_root),
            spatial_upsampler_path=str(weights.spatial_upsampler),
            quantization=self.quantization,
        )
        self.prompt_cache = PromptCache(prompt_cache_size)
        self.ledger.on_build("text_encoder", self.prompt_cache.wrap_text_encoder)
        self.ledger.on_build("embeddings_processor", self.prompt_cache.wrap_embeddings_processor)
        # Each decoded tile's finished frames go to the encoder at once, not one tile later (bit-identical frames).
        self.ledger.on_build("video_decoder", hand_over_early)
        self.compiled: CompiledTransformer | None = None
        if compile_transformer:
            self.ledger.on_build("transformer", lambda model: self._compile(model, compile_backend))
        self.distilled_lora: tuple[LoraPathStrengthAndSDOps, ...] = ()
        if weights.distilled_lora is not None:
            self.distilled_lora = (
                LoraPathStrengthAndSDOps(str(weights.distilled_lora), lora_strength, LTXV_LORA_COMFY_RENAMING_MAP),
            )
        self.params = self._guidance_params()
        common = dict(
            gemma_root=str(weights.gemma_root),
            spatial_upsampler_path=str(weights.spatial_upsampler),
            loras=[],
            device=self.device,
            quantization=self.quantization,
        )
        self._distilled = DistilledPipeline(distilled_checkpoint_path=str(weights.checkpoint), **common)
        self._two_stage = TI2VidTwoStagesPipeline(
            checkpoint_path=str(weights.checkpoint), distilled_lora=list(self.distilled_lora), **common
        )
        self._a2vid = A2VidPipelineTwoStage(
            checkpoint_path=str(weights.checkpoint), distilled_lora=list(self.distilled_lora), **common
        )
        # Reentrant: a caller holding exclusive() (a render decoding its frames, a training) may call generate.
        self._lock = threading.RLock()
        self.model_info = self._model_info()

    @contextlib.contextmanager
    def exclusive(self, what: str = "this job") -> Iterator[None]:
        """Sole use of the resident model for the block, with the GPU running out of memory turned into a typed
        OutOfMemoryError (and the allocator's cache freed). Generation, the lazy VAE decode that an encode drives
        afterwards, and training all run inside it, so none of them sees the model half-adapted or mid-use."""
        with self._lock:
            try:
                yield
            except torch.OutOfMemoryError as exc:
                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise OutOfMemoryError(
                    f"the GPU ran out of memory during {what}: try a smaller size or fewer frames"
                ) from exc

    def _compile(self, model: torch.nn.Module, backend: str) -> None:
        self.compiled = CompiledTransformer(model.velocity_model, backend=backend)

    def warm_compiled(self, shapes: list[tuple[int, int, int]]) -> float:
        """Compile the transformer for each (width, height, frames) by generating once at it (the frames are never
        decoded); any other shape runs eager later. Returns the seconds it took; 0 when compiling is off."""
        start = time.perf_counter()
        self.ledger.transformer()
        if self.compiled is None or self.compiled.compiled is None:
            return 0.0
        for width, height, frames in shapes:
            with self.compiled.warming():
                self.generate(GenerationRequest(prompt="warm-up", width=width, height=height, num_frames=frames))
        return time.perf_counter() - start

    def _model_info(self) -> dict:
        with safe_open(str(self.weights.checkpoint), framework="pt") as f:
            meta = f.metadata() or {}
        version = meta.get("model_version", "")
        return {
            "family": "LTX-2.3" if version.startswith("2.3") else "LTX-2",
            "model_version": version or "unknown",
            "checkpoint": str(self.weights.checkpoint),
            "tiny": self.weights.tiny,
            "device": str(self.device),
            "quantization": "fp8-cast" if self.quantization is not None else "none",
            "dtype": str(self.compute_dtype).removeprefix("torch."),
            "threads": torch.get_num_threads() if self.device.type == "cpu" else None,
        }

    def _guidance_params(self):
        """The library's defaults for this checkpoint, with STG blocks that exist in it."""
        params = detect_params(str(self.weights.checkpoint))
        with safe_open(str(self.weights.checkpoint), framework="pt") as f:
            config = json.loads((f.metadata() or {}).get("config", "{}"))
        layers = config.get("transformer", {}).get("num_layers", 48)
        fixed = {}
        for name in ("video_guider_params", "audio_guider_params"):
            guider = getattr(params, name)
            blocks = [b for b in guider.stg_blocks if b < layers] or [layers - 1]
            fixed[name] = replace(guider, stg_blocks=blocks)
        return replace(params, **fixed)

    def warm_up(self) -> float:
        """Build every model now; returns the seconds it took."""
        start = time.perf_counter()
        self.ledger.warm_up()
        # The pipelines gc.collect() between stages to free models they no longer hold; ours stay resident,
        # and scanning the millions of objects torch/transformers leave behind cost ~0.2 s per call (4 per
        # job on the tiny checkpoint: 3/4 of its time). Freezing what exists now keeps those scans to the
        # job's own objects.
        gc.freeze()
        return time.perf_counter() - start

    def steps_plan(self, request: GenerationRequest) -> list[tuple[str, int]]:
        stage_2 = len(STAGE_2_DISTILLED_SIGMA_VALUES) - 1
        if request.audio is None and request.mode == "distilled":
            return [("stage 1", len(DISTILLED_SIGMA_VALUES) - 1), ("stage 2", stage_2)]
        return [("stage 1", self._stage_1_steps(request)), ("stage 2", stage_2)]

    def _stage_1_steps(self, request: GenerationRequest) -> int:
        return request.steps or self.params.num_inference_steps

    def _images(self, request: GenerationRequest) -> list[ImageConditioningInput]:
        if request.first_frame is not None:
            images = [ImageConditioningInput(str(request.first_frame), 0, request.image_strength)]
            if request.image is None:
                return images
            anchors = max(request.keyframe_anchors, 1)
        elif request.image is None:
            return []
        else:
            images = [ImageConditioningInput(str(request.image), 0, request.image_strength)]
            anchors = request.keyframe_anchors
        path = str(request.image)
        # Anchors: the same face at evenly spaced later frames, on the 8-frame latent grid, holding identity.
        last = request.num_frames - 1
        for i in range(1, anchors + 1):
            frame = round(last * i / (anchors + 1) / 8) * 8
            if 0 < frame <= last:
                images.append(ImageConditioningInput(path, frame, request.anchor_strength))
        return images

    def generate(
        self,
        request: GenerationRequest,
        on_progress: progress.ProgressCallback | None = None,
        should_cancel: progress.CancelCheck | None = None,
    ) -> GenerationResult:
        validate(request)
        loras: tuple[LoraPathStrengthAndSDOps, ...] = ()
        if request.lora is not None:
            loras = (LoraPathStrengthAndSDOps(str(request.lora), request.lora_strength, LTXV_LORA_COMFY_RENAMING_MAP),)
        tracker = progress.StepTracker(self.steps_plan(request), on_progress, should_cancel)
        what = f"generation at {request.width}x{request.height}x{request.num_frames}"
        with self.exclusive(what), progress.tracking(tracker), torch.inference_mode():
            start = time.perf_counter()
            tracker.check_cancel()
            video, audio, name = self._run(request, loras)
        # The frames decode lazily while the caller encodes: it holds exclusive() around generate and encode so
        # the decode is covered by the same lock and out-of-memory handling.
        return GenerationResult(
            video=_inference_iter(video),
            audio=audio,
            request=request,
            pipeline=name,
            tiny=self.weights.tiny,
            timings={"denoise_s": time.perf_counter() - start},
        )

    def _run(self, request: GenerationRequest, loras):
        images = self._images(request)
        common = dict(
            prompt=request.prompt,
            seed=request.seed,
            height=request.height,
            width=request.width,
            num_frames=request.num_frames,
            frame_rate=request.fps,
            images=images,
            tiling_config=self.tiling,
        )
        if request.audio is not None:
            pipe = self._a2vid
            pipe.stage_1_model_ledger = self.ledger.with_loras(loras)
            pipe.stage_2_model_ledger = self.ledger.with_loras(loras + self.distilled_lora)
            stereo = _stereo_wav(Path(request.audio), request.audio_start, request.num_frames / request.fps)
            try:
                video, audio = pipe(
                    negative_prompt=request.negative_prompt,
                    num_inference_steps=self._stage_1_steps(request),
                    video_guider_params=self.params.video_guider_params,
                    audio_path=str(stereo),
                    audio_start_time=0.0,
                    audio_max_duration=request.num_frames / request.fps,
                    **common,
                )
            finally:
                stereo.unlink(missing_ok=True)
            return video, audio, "A2VidPipelineTwoStage"
        if request.mode == "two-stage":
            pipe = self._two_stage
            pipe.stage_1_model_ledger = self.ledger.with_loras(loras)
            pipe.stage_2_model_ledger = self.ledger.with_loras(loras + self.distilled_lora)
            video, audio = pipe(
                negative_prompt=request.negative_prompt,
                num_inference_steps=self._stage_1_steps(request),
                video_guider_params=self.params.video_guider_params,
                audio_guider_params=self.params.audio_guider_params,
                **common,
            )
            return video, audio, "TI2VidTwoStagesPipeline"
        pipe = self._distilled
        pipe.model_ledger = self.ledger.with_loras(loras)
        video, audio = pipe(**common)
        return video, audio, "DistilledPipeline"


def _inference_iter(chunks: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
    """The VAE decodes lazily while the encoder reads; keep that under inference mode too."""
    with torch.inference_mode():
        yield from chunks


def _stereo_wav(path: Path, start: float, seconds: float) -> Path:
    """A2Vid's audio encoder takes stereo only and the library does not up-mix: convert, trim and pad first."""
    import tempfile
    import wave

    import numpy as np

    from ltx2.media import MediaError, read_audio

    try:
        samples, rate = read_audio(path, channels=2, start=start, max_seconds=seconds)
    except MediaError as exc:
        raise InvalidInputError(str(exc)) from exc
    if samples.shape[1] == 0:
        raise InvalidInputError(f"{path.name} has no audio after {start:.2f} s")
    # The clip is a whole number of 8k+1 frames, usually a little longer than the recording; A2Vid needs
    # audio latents for all of it, so the tail is padded with silence.
    missing = int(round(seconds * rate)) - samples.shape[1]
    if missing > 0:
        samples = np.pad(samples, ((0, 0), (0, missing)))
    fd, name = tempfile.mkstemp(prefix="a2vid-", suffix=".wav")
    os.close(fd)
    pcm = (np.clip(samples.T, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(name, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
    return Path(name)
