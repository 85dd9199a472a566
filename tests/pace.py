"""How long this machine takes for one tiny job, measured once per test session; test waits scale with it.

A correct product must never fail a test for running on a slow CPU, so waits are not fixed numbers of seconds:
each is written as its budget on a reference machine that makes a warm 64x64, 0.4 s tiny clip in
REFERENCE_JOB_S, and `scaled()` stretches it by how much slower this machine is (it never shrinks one).
The measurement runs in a subprocess the first time a wait needs it; AVATAR_TEST_JOB_COST=<seconds> skips it.

    python -m tests.pace      # prints the measured cost of one warm tiny job
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

REFERENCE_JOB_S = 0.5
_cost: float | None = None


def job_cost() -> float:
    """Seconds for one warm 64x64, 0.4 s tiny job on this machine (measured once, then remembered)."""
    global _cost
    if _cost is None:
        given = os.environ.get("AVATAR_TEST_JOB_COST")
        if given:
            _cost = float(given)
        else:
            from ltx2.settings import PROJECT_ROOT

            out = subprocess.run(
                [sys.executable, "-m", "tests.pace"],
                capture_output=True,
                text=True,
                cwd=PROJECT_ROOT,
                timeout=900,
                check=True,
            )
            _cost = float(out.stdout.strip().splitlines()[-1])
    return _cost


def measured() -> float | None:
    return _cost


def factor() -> float:
    return max(1.0, job_cost() / REFERENCE_JOB_S)


def scaled(seconds: float) -> float:
    """A wait of `seconds` on the reference machine, as long as it needs to be on this one."""
    return seconds * factor()


def _measure(jobs: int = 3) -> float:
    import tempfile
    from pathlib import Path

    from ltx2.engine.factory import load_engine
    from ltx2.render import ClipSpec, render
    from ltx2.settings import get_settings

    settings = get_settings()
    engine = load_engine(settings)
    engine.warm_up()
    out = Path(tempfile.mkdtemp(prefix="pace-"))
    times = []
    for i in range(jobs + 1):  # the first job warms caches and is not counted
        start = time.perf_counter()
        render(
            engine,
            ClipSpec(text=f"Hello there, clip {i}.", seed=i, width=64, height=64, seconds=0.4),
            out / f"{i}.mp4",
            settings,
        )
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


if __name__ == "__main__":
    print(f"{_measure():.3f}")
