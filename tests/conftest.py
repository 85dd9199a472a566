from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import pytest

from ltx2.settings import PROJECT_ROOT


@pytest.fixture(scope="session")
def tiny():
    """The project's tiny checkpoint set (built once; later runs only check its stamp)."""
    # Imported here, not at the top: tests that need no model must run where torch is not importable.
    from ltx2.engine.tiny import ensure_tiny

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


# --- databases: every store/server test runs on SQLite and on a real PostgreSQL -------------------------------

DB_BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def pg_cluster():
    """One throwaway PostgreSQL server (loopback, temp folder) for the whole session; stopped at the end."""
    import os

    from tests.pg import PgCluster, find_bin_dir

    if find_bin_dir() is None:
        message = "PostgreSQL server binaries not found (./scripts/run_tests.sh installs Debian's postgresql)"
        if os.environ.get("AVATAR_TEST_POSTGRES") == "required":
            pytest.fail(message)
        pytest.skip(message)
    cluster = PgCluster().start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _new_database(request, folder: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{folder / 'avatar.db'}"
    return request.getfixturevalue("pg_cluster").create_database()


@pytest.fixture(params=DB_BACKENDS)
def db_url(request, tmp_path) -> str:
    """A fresh, empty database for one test: a SQLite file or a new PostgreSQL database."""
    return _new_database(request, tmp_path)


@pytest.fixture(scope="module", params=DB_BACKENDS)
def module_db_url(request, tmp_path_factory) -> str:
    """A fresh, empty database shared by one test module (per backend)."""
    return _new_database(request, tmp_path_factory.mktemp("db"))


def pytest_terminal_summary(terminalreporter):
    from tests.pace import REFERENCE_JOB_S, measured

    cost = measured()
    if cost is not None:
        terminalreporter.write_line(
            f"machine pace: one warm tiny job took {cost:.2f} s (reference {REFERENCE_JOB_S} s); "
            f"job waits were stretched {max(1.0, cost / REFERENCE_JOB_S):.1f}x"
        )
