"""Resident engine vs a fresh Python process per job (the seed's design), side by side in one run.

Both sides make the same N clips on the same checkpoint (tiny by default): the resident side builds the
engine once (counted) and renders every job in-process; the other side runs `avatar generate` in a new
process per job, which imports torch and ltx-pipelines and loads every model again each time.

    python bench/resident_vs_subprocess.py [--jobs 5 --size 64x64 --seconds 0.4]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--size", default="64x64", help="WxH, multiples of 64")
    parser.add_argument("--seconds", type=float, default=0.4)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    texts = [f"Hello there, this is clip number {i}." for i in range(args.jobs)]
    out = Path(tempfile.mkdtemp(prefix="bench-resident-"))

    # Resident: import, build and warm once, then every job in the same process.
    start = time.perf_counter()
    from ltx2.engine.factory import load_engine
    from ltx2.render import ClipSpec, render
    from ltx2.settings import get_settings

    settings = get_settings()
    engine = load_engine(settings)
    engine.warm_up()
    setup = time.perf_counter() - start
    resident_jobs = []
    for i, text in enumerate(texts):
        t = time.perf_counter()
        spec = ClipSpec(text=text, seed=i, width=width, height=height, seconds=args.seconds)
        render(engine, spec, out / f"resident-{i}.mp4", settings)
        resident_jobs.append(time.perf_counter() - t)
    resident_total = time.perf_counter() - start

    # Subprocess per job: what the seed did — everything loaded again for every clip.
    avatar = [sys.executable, "-m", "ltx2.cli", "generate"]
    sub_jobs = []
    for i, text in enumerate(texts):
        t = time.perf_counter()
        subprocess.run(
            [
                *avatar,
                "--text",
                text,
                "--seed",
                str(i),
                "--width",
                str(width),
                "--height",
                str(height),
                "--seconds",
                str(args.seconds),
                "--out",
                str(out / f"subprocess-{i}.mp4"),
            ],
            check=True,
            cwd=ROOT,
            capture_output=True,
        )
        sub_jobs.append(time.perf_counter() - t)
    sub_total = sum(sub_jobs)

    result = {
        "jobs": args.jobs,
        "size": f"{width}x{height}",
        "resident_setup_s": setup,
        "resident_job_median_s": statistics.median(resident_jobs),
        "resident_total_s": resident_total,
        "subprocess_job_median_s": statistics.median(sub_jobs),
        "subprocess_total_s": sub_total,
        "speedup": sub_total / resident_total,
        "tiny": engine.weights.tiny,
    }
    result.update(cpu_facts(engine))
    print(
        f"{args.jobs} jobs at {width}x{height}, {args.seconds}s each ({'tiny' if result['tiny'] else 'real'} checkpoint)"
    )
    print(
        f"  cpu: {result['cpu']}; ATen {result['aten_isa']}, oneDNN limit {result['onednn_max_isa']}, "
        f"native bf16 {'yes' if result['native_bf16'] else 'no'} -> models compute in {result['dtype']} on {result['threads']} thread(s)"
    )
    print(
        f"  resident:   setup {setup:6.2f} s, job median {result['resident_job_median_s']:6.2f} s, "
        f"total {resident_total:6.2f} s"
    )
    print(f"  subprocess: job median {result['subprocess_job_median_s']:6.2f} s, total {sub_total:6.2f} s")
    print(f"  resident is {result['speedup']:.1f}x faster over {args.jobs} jobs (goal >= 5x)")
    return result


def cpu_facts(engine) -> dict:
    """What decides the speed of a CPU run: the instruction set ATen and oneDNN use, and the compute dtype."""
    import os
    import platform

    import torch

    from ltx2.engine.device import cpu_has_native_bf16

    model = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": f"{model}, {os.cpu_count()} cores",
        "aten_isa": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "unset"),
        "native_bf16": cpu_has_native_bf16(),
        "dtype": engine.model_info["dtype"],
        "threads": engine.model_info["threads"],
    }


if __name__ == "__main__":
    main()
