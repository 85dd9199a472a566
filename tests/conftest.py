from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest

from ltx2.engine.tiny import TinyPaths, ensure_tiny
from ltx2.settings import PROJECT_ROOT


@pytest.fixture(scope="session")
def tiny() -> TinyPaths:
    """The project's tiny checkpoint set (built once; later runs only check its stamp)."""
    return ensure_tiny(PROJECT_ROOT / "models" / "tiny")


@pytest.fixture(scope="session")
def engine(tiny):
    from ltx2.engine.pipelines import Engine, EngineWeights

    return Engine(
        EngineWeights(tiny.checkpoint, tiny.gemma_root, tiny.spatial_upsampler, tiny.distilled_lora, tiny=True),
        device="cpu",
    )


@pytest.fixture(scope="session")
def face_photo(tmp_path_factory) -> Path:
    """A real photograph of a face that ships inside scikit-image."""
    from PIL import Image
    from skimage import data

    path = tmp_path_factory.mktemp("img") / "astronaut.png"
    Image.fromarray(data.astronaut()).save(path)
    return path


def write_tone(path: Path, seconds: float, rate: int = 16000, channels: int = 1, freq: float = 220.0) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    signal = (0.3 * np.sin(2 * math.pi * freq * t) * 32767).astype(np.int16)
    frames = np.repeat(signal[:, None], channels, axis=1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames.tobytes())
    return path
