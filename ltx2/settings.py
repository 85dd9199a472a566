"""Settings from the environment (prefix AVATAR_) or a .env file; one cached instance per process."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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

    # "auto": fp8-cast on CUDA (the 19B transformer in FP8, upcast per layer), none on CPU.
    quantization: Literal["auto", "none", "fp8-cast", "fp8-scaled-mm"] = "auto"
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    # Generation defaults.
    default_fps: float = 24.0
    max_seconds: float = Field(default=20.0, gt=0)
    words_per_minute: float = Field(default=150.0, gt=0)
    two_stage_steps: int = Field(default=40, ge=1)

    # Hugging Face repositories for `avatar models download`.
    hf_repo: str = "Lightricks/LTX-2"
    hf_gemma_repo: str = "google/gemma-3-12b-it-qat-q4_0-unquantized"

    @property
    def uses_tiny(self) -> bool:
        return self.checkpoint is None

    @property
    def tiny_dir(self) -> Path:
        return self.models_dir / "tiny"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
