"""The worker's CPU-measurable levers, each as a ratio against itself switched off, side by side in one run.

- overlap: N queued clips through the real worker (claim → model work → CPU tail → succeeded) with
  `overlap_jobs` on and off: jobs per minute. On: job N's encode/thumbnail/metadata/hash runs in a thread while
  job N+1 generates.
- prompt cache: the same prompt generated again with the cache on and off: the text-encode time (Gemma and
  the embeddings processor) and the whole generate call.

Tiny checkpoint on CPU by default (the same code paths as on a GPU; the GPU figures come from
bench/gpu_fullsize.py).

    python bench/worker_levers.py [--jobs 6 --size 384x256 --seconds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=6, help="queued clips per overlap mode (default 6)")
    p.add_argument("--size", default="384x256", help="WxH of the queued clips (multiples of 64)")
    p.add_argument("--seconds", type=float, default=2.0, help="length of each queued clip")
    p.add_argument("--repeat", type=int, default=3, help="prompt-cache timings per side (median)")
    p.add_argument("--skip", choices=("overlap", "cache"), action="append", default=[])
    return p.parse_args(argv)


def overlap(engine, settings_for, jobs: int, width: int, height: int, seconds: float) -> dict:
    from ltx2.store import lifecycle
    from ltx2.worker.main import KINDS, Worker

    out = {}
    for on in (False, True):
        with tempfile.TemporaryDirectory(prefix="bench-overlap-") as tmp:
            settings = settings_for(Path(tmp), on)
            worker = Worker(settings, worker_id=f"bench-{'on' if on else 'off'}")
            worker.store.migrate()
            worker.engine = engine
            ids = [
                worker.store.create(
                    "generate",
                    {
                        "text": f"Clip {i}: hello there.",
                        "seed": i,
                        "width": width,
                        "height": height,
                        "seconds": seconds,
                    },
                )[0].id
                for i in range(jobs)
            ]
            start = time.perf_counter()
            while (job := lifecycle.claim(worker.store, worker.id, KINDS)) is not None:
                worker.run_job(job)
            worker._join_tail()
            wall = time.perf_counter() - start
            statuses = [worker.store.get(i).status for i in ids]
            worker.store.close()
        if statuses != ["succeeded"] * jobs:
            raise RuntimeError(f"overlap {'on' if on else 'off'}: not every job succeeded: {statuses}")
        out["on" if on else "off"] = {"seconds": round(wall, 2), "jobs_per_min": round(jobs / wall * 60, 2)}
        print(f"  overlap {'on ' if on else 'off'}: {jobs} jobs in {wall:.1f}s = {jobs / wall * 60:.2f} jobs/min")
    out["ratio"] = round(out["on"]["jobs_per_min"] / out["off"]["jobs_per_min"], 3)
    return out


def prompt_cache(engine, repeat: int) -> dict:
    """Text-encode seconds (Gemma + embeddings processor, timed by hooks) and whole generate seconds."""
    from ltx2.engine.pipelines import GenerationRequest

    encoder = engine.ledger.text_encoder()
    processor = engine.ledger.gemma_embeddings_processor()
    spent = [0.0]

    def timed(obj, name):
        inner = getattr(obj, name)

        def call(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - t

        setattr(obj, name, call)
        return inner

    saved = (timed(encoder, "encode"), timed(processor, "process_hidden_states"))
    request = GenerationRequest(prompt="A woman says: the cache bench.", width=64, height=64, num_frames=9)
    size = engine.prompt_cache.size
    out = {}
    try:
        for on in (False, True):
            engine.prompt_cache.size = size if on else 0
            engine.prompt_cache.clear()
            engine.generate(request)  # fills the cache when on
            encodes, totals = [], []
            for _ in range(repeat):
                spent[0] = 0.0
                t = time.perf_counter()
                list(engine.generate(request).video)
                totals.append(time.perf_counter() - t)
                encodes.append(spent[0])
            out["on" if on else "off"] = {
                "text_encode_s": round(statistics.median(encodes), 4),
                "generate_s": round(statistics.median(totals), 3),
            }
    finally:
        encoder.encode, processor.process_hidden_states = saved
        engine.prompt_cache.size = size
    out["text_encode_ratio"] = round(out["on"]["text_encode_s"] / out["off"]["text_encode_s"], 3)
    out["generate_ratio"] = round(out["on"]["generate_s"] / out["off"]["generate_s"], 3)
    for side in ("off", "on"):
        print(
            f"  prompt cache {side:<3}: text encode {out[side]['text_encode_s']:.3f}s, generate {out[side]['generate_s']:.2f}s"
        )
    return out


def main(argv: list[str] | None = None) -> dict:
    args = _args(argv)
    from ltx2.engine.factory import load_engine
    from ltx2.settings import Settings, get_settings

    width, height = (int(v) for v in args.size.lower().split("x"))
    base = get_settings()
    engine = load_engine(base)
    engine.warm_up()

    def settings_for(folder: Path, on: bool) -> Settings:
        return base.model_copy(
            update={"outputs_dir": folder / "outputs", "temp_dir": folder / "temp", "overlap_jobs": on}
        )

    result: dict = {"device": engine.model_info["device"], "tiny": engine.model_info["tiny"]}
    if "overlap" not in args.skip:
        print(f"overlap: {args.jobs} queued {width}x{height} {args.seconds:g} s clips, off then on")
        result["overlap"] = overlap(engine, settings_for, args.jobs, width, height, args.seconds)
    if "cache" not in args.skip:
        print("prompt cache: the same prompt again, off then on")
        result["prompt_cache"] = prompt_cache(engine, args.repeat)
    print("\nratios (lever on / off):")
    if "overlap" in result:
        print(f"  jobs per minute, overlap            {result['overlap']['ratio']:.2f}x  (goal: > 1)")
    if "prompt_cache" in result:
        pc = result["prompt_cache"]
        print(f"  text-encode time, prompt cache      {pc['text_encode_ratio']:.2f}x  (goal: ~0)")
        print(f"  generate time, prompt cache         {pc['generate_ratio']:.2f}x")
    return result


if __name__ == "__main__":
    main()
