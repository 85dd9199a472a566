"""Settings from the environment (prefix AVATAR_) or a .env file; one cached instance per process."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ltx2.domain import limits as L
from ltx2.domain.limits import DEFAULT_MAX_SECONDS, MAX_SEGMENT_SECONDS, MIN_SEGMENT_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VERIFIED_FILE = "verified.json"  # under models_dir; written by `avatar models download` (ltx2/weights.py)
WEIGHT_FIELDS = ("checkpoint", "spatial_upsampler", "distilled_lora", "gemma_root")


def read_verified(models_dir: Path) -> dict | None:
    """The weight paths `avatar models download` verified, if every file it listed is still there at the size
    it had then; None otherwise (no record, or files deleted or truncated since)."""
    try:
        record = json.loads((Path(models_dir) / VERIFIED_FILE).read_text(encoding="utf-8"))
        files = record["files"]
        if not files or not all(Path(p).is_file() and Path(p).stat().st_size == size for p, size in files.items()):
            return None
        return {field: Path(record[field]) for field in WEIGHT_FIELDS} | {"verified_at": record["verified_at"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AVATAR_", env_file=".env", extra="ignore")

    # Where `avatar models download` puts the real weights and where the tiny set is built.
    models_dir: Path = PROJECT_ROOT / "models"
    outputs_dir: Path = PROJECT_ROOT / "outputs"
    temp_dir: Path = PROJECT_ROOT / "temp"

    # Real checkpoints. When `checkpoint` is unset the tiny checkpoint is used (and every output says so).
    checkpoint: Path | None = None
    spatial_upsampler: Path | None = None
    distilled_lora: Path | None = None
    gemma_root: Path | None = None
    distilled_lora_strength: float = 1.0
    # With `checkpoint` unset, use the weights `avatar models download` verified (models_dir/verified.json)
    # when they are still on disk, so a GPU host needs no hand-set paths; false: the tiny set unless configured.
    use_verified: bool = True

    # "auto": fp8-cast on CUDA (the 19B transformer in FP8, upcast per layer), none on CPU.
    quantization: Literal["auto", "none", "fp8-cast", "fp8-scaled-mm"] = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    # CPU compute dtype. "auto": bf16 where the CPU has native bf16 (AVX512-BF16/AMX), else float32 (emulated
    # bf16 is ~25x slower). CUDA always computes in bf16 like the release.
    cpu_dtype: Literal["auto", "bfloat16", "float32"] = "auto"
    # Intra-op threads on CPU; 0 = auto: one for the tiny checkpoint (its matrices are so small that threads only
    # add synchronisation, and with the API, worker and tests sharing two cores several threads per process
    # spin against each other: measured 3-4 s vs 30 s per job), torch's default for real weights.
    cpu_threads: int = Field(default=0, ge=0)
    # Prompt embeddings kept per worker (a few MB each on the real model): a repeated prompt skips Gemma. 0: off.
    prompt_cache_size: int = Field(default=16, ge=0)
    # torch.compile the transformer for compile_shapes (WIDTHxHEIGHTxFRAMES; default: the studio's presets at 5 s)
    # at worker start; other shapes run eager. Off by default: warming costs start-up time (bench/gpu_fullsize.py
    # measures both), and on CPU inductor needs a C++ toolchain.
    compile: bool = False
    compile_backend: str = "inductor"
    compile_shapes: list[str] = Field(
        default_factory=lambda: ["768x512x121", "512x768x121", "512x512x121", "1024x576x121", "384x256x121"]
    )
    # Temporal tiles of the VAE decode, in frames (multiples of 8): the release decodes 64-frame tiles that overlap
    # by 24. A chunk of frames reaches the encoder only once the tile after it is decoded, so smaller tiles start
    # the encode sooner (bench/decode_encode_overlap.py --tiles); the seams are blended over the overlap.
    decode_tile_frames: int = Field(default=64, ge=16, multiple_of=8)
    decode_tile_overlap_frames: int = Field(default=24, ge=0, multiple_of=8)
    # The worker starts the next job's model work while the last job's CPU tail (encode, thumbnail, metadata,
    # hash) finishes in a thread; the job is moved to succeeded only once its files are in place. None (auto): on
    # with a GPU, where the tail would otherwise leave it idle; off on CPU, where the tail and the next job share
    # the same cores (bench/worker_levers.py: 0.92-0.99x jobs/min on a 2-core machine).
    overlap_jobs: bool | None = None

    # Generation defaults.
    default_fps: float = 24.0
    max_seconds: float = Field(default=DEFAULT_MAX_SECONDS, gt=0)
    words_per_minute: float = Field(default=L.DEFAULT_WORDS_PER_MINUTE, gt=0)
    two_stage_steps: int = Field(default=40, ge=1)
    # x264 preset of the final MP4 encode (quality is set by crf 18 either way; slower presets only shrink files).
    encode_preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"] = "veryfast"
    # Long scripts: each segment is at most segment_seconds of speech (one clip; under max_seconds so the
    # continuity frame still fits); a script may run to max_script_seconds of speech in max_segments clips.
    segment_seconds: float = Field(default=L.DEFAULT_SEGMENT_SECONDS, ge=MIN_SEGMENT_SECONDS, le=MAX_SEGMENT_SECONDS)
    max_script_seconds: float = Field(default=L.DEFAULT_MAX_SCRIPT_SECONDS, gt=0)
    max_segments: int = Field(default=L.DEFAULT_MAX_SEGMENTS, ge=1)

    # Job server. The database and uploads live in a hidden folder under outputs/ (never served as a file).
    database_url: str | None = None  # default: sqlite:///<outputs>/.state/avatar.db; postgresql+psycopg://… to scale
    host: str = "127.0.0.1"
    port: int = 8000
    ui_port: int = 8501
    # Log every successful poll (GET of a job, a list, health, metrics) in the access log; off: only errors,
    # refusals and requests that change something, downloads and streams are logged.
    log_polls: bool = False
    public_url: str | None = None  # base of the URLs in job documents; default http://<host>:<port>
    api_keys: list[str] = Field(default_factory=list)  # AVATAR_API_KEYS='["key1","key2"]'
    webhook_secret: str | None = None  # whsec_…; generated into the state folder when unset
    # Replicate-shaped /v1: the one model this server serves, as owner/name.
    model_name: str = Field(default="local/avatar", pattern=r"^[a-z0-9_.-]+/[a-z0-9_.-]+$")
    # Output and stream URLs in job documents carry a signed token so they open without the key (Replicate's
    # clients, <video src>, n8n) for url_ttl_s; HMAC secret generated into the state folder when unset.
    url_secret: str | None = None
    url_ttl_s: float = Field(default=3600.0, gt=0)
    studio_url: str | None = None  # base of the studio's pages in `urls.web`; default http://<host>:<ui_port>
    # Security (README "Security"): Host names besides loopback, this machine's IPs and public_url's host that the
    # API answers ("*" = any); extra browser origins allowed to send state-changing requests; outbound URLs
    # (webhooks) allowed to reach local/private receivers, as "host" or "host:port" — n8n on this machine by default.
    allowed_hosts: list[str] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)
    fetch_allow: list[str] = Field(default_factory=lambda: ["localhost:5678", "127.0.0.1:5678"])
    # Uploaded photos: decoded at most this many at once (each ~0.1 GB per 10 MP); larger than max_image_mp is
    # refused, except JPEGs, which are decoded downscaled (1/2, 1/4, 1/8) to fit.
    decode_slots: int = Field(default=2, ge=1)
    max_image_mp: float = Field(default=40.0, gt=0)
    workers: int = 1  # worker processes `avatar serve` supervises (one per GPU on a multi-GPU host)
    worker_name: str | None = None  # worker ids start with this (default: the host name), e.g. gpu-box-2
    heartbeat_s: float = Field(default=2.0, gt=0)
    stale_after_s: float = Field(default=20.0, gt=0)  # no heartbeat for this long: the worker is lost
    poll_s: float = Field(default=0.25, gt=0)
    max_upload_mb: int = 50
    # Deleted videos wait this many days in the trash (outputs/.state/trash), restorable, before the sweeper
    # empties them for good; 0 deletes at once.
    trash_days: float = Field(default=7.0, ge=0)
    # Finished jobs' inputs (reference photos, recordings) are deleted this many days after the job ended, unless a
    # profile or another job still uses them; off when unset. The API's background loop sweeps.
    retention_days: float | None = Field(default=None, gt=0)

    # Hugging Face repositories for `avatar models download`.
    hf_repo: str = "Lightricks/LTX-2"
    hf_gemma_repo: str = "google/gemma-3-12b-it-qat-q4_0-unquantized"

    _weights_source: Literal["configured", "verified", "tiny"] = PrivateAttr(default="tiny")

    @model_validator(mode="after")
    def _decode_tiles_advance(self) -> Settings:
        if self.decode_tile_overlap_frames >= self.decode_tile_frames:
            raise ValueError(
                f"AVATAR_DECODE_TILE_OVERLAP_FRAMES ({self.decode_tile_overlap_frames}) must be smaller than "
                f"AVATAR_DECODE_TILE_FRAMES ({self.decode_tile_frames})"
            )
        return self

    @model_validator(mode="after")
    def _adopt_verified_weights(self) -> Settings:
        if self.checkpoint is not None:
            self._weights_source = "configured"
        elif self.use_verified and (record := read_verified(self.models_dir)) is not None:
            for field in WEIGHT_FIELDS:  # paths set explicitly still win
                if getattr(self, field) is None:
                    setattr(self, field, record[field])
            self._weights_source = "verified"
        return self

    @property
    def weights_source(self) -> str:
        """configured (AVATAR_CHECKPOINT), verified (models_dir/verified.json) or tiny."""
        return self._weights_source

    @property
    def uses_tiny(self) -> bool:
        return self.checkpoint is None

    @property
    def tiny_dir(self) -> Path:
        return self.models_dir / "tiny"

    @property
    def state_dir(self) -> Path:
        return self.outputs_dir / ".state"

    @property
    def uploads_dir(self) -> Path:
        return self.state_dir / "uploads"

    @property
    def trash_dir(self) -> Path:
        return self.state_dir / "trash"

    @property
    def profiles_dir(self) -> Path:
        return self.state_dir / "profiles"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.state_dir / 'avatar.db'}"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def studio_base_url(self) -> str:
        return (self.studio_url or f"http://{self.host}:{self.ui_port}").rstrip("/")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
