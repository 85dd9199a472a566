"""Decode and encode overlapped vs one after the other, side by side in one run (issue 19, goal <= 0.7x).

Each repeat generates the same clip twice on the resident engine (the tiny checkpoint on a machine without real
weights) and times only the phase after denoising: the VAE decoding its chunks plus the PyAV encode. The
sequential side is `encode_mp4` pulling the lazy decode itself (decode a chunk, encode it, decode the next);
the overlapped side is `encode_mp4_overlapped` (what `render` uses: the encoder on its own thread, fed each
chunk as the VAE finishes it). Repeats interleave the two sides (ABBA) so drift on a shared machine hits both.

    python bench/decode_encode_overlap.py [--repeats 4 --size 256x256 --frames 121]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--size", default="256x256", help="WxH, multiples of 64")
    parser.add_argument("--frames", type=int, default=121, help="8k+1; 121 decodes in three temporal chunks")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    from bench.resident_vs_subprocess import cpu_facts
    from ltx2.engine.factory import load_engine
    from ltx2.engine.pipelines import GenerationRequest
    from ltx2.media import encode_mp4, encode_mp4_overlapped
    from ltx2.settings import get_settings

    settings = get_settings()
    engine = load_engine(settings)
    engine.warm_up()
    out = Path(tempfile.mkdtemp(prefix="bench-overlap-"))
    request = GenerationRequest(
        prompt="A person speaks to the camera.", seed=7, width=width, height=height, num_frames=args.frames
    )
    encoders = {"sequential": encode_mp4, "overlapped": encode_mp4_overlapped}

    cpu_s: dict[str, list[float]] = {"sequential": [], "overlapped": []}
    arrivals: list[tuple[int, float]] = []  # (frames, seconds into the phase) of the last overlapped run

    def timed(chunks, start: float):
        arrivals.clear()
        for chunk in chunks:
            arrivals.append((len(chunk), time.perf_counter() - start))
            yield chunk

    def one(side: str, n: int) -> float:
        with engine.exclusive("the bench"):
            result = engine.generate(request)
            audio = result.audio.waveform.float().cpu().numpy()
            start, cpu = time.perf_counter(), time.process_time()
            encoders[side](
                timed(result.video, start) if side == "overlapped" else result.video,
                request.fps,
                out / f"{side}-{n}.mp4",
                audio=audio,
                sample_rate=result.audio.sampling_rate,
                preset=settings.encode_preset,
            )
            cpu_s[side].append(time.process_time() - cpu)  # every thread of this process, x264's included
            return time.perf_counter() - start

    one("sequential", -1)  # warm both paths once (first-call allocations, x264 init)
    one("overlapped", -1)
    for runs in cpu_s.values():
        runs.clear()
    times: dict[str, list[float]] = {"sequential": [], "overlapped": []}
    for n in range(args.repeats):
        order = ("sequential", "overlapped") if n % 2 == 0 else ("overlapped", "sequential")
        for side in order:
            times[side].append(one(side, n))

    seq, ovl = statistics.median(times["sequential"]), statistics.median(times["overlapped"])
    result = {
        "size": f"{width}x{height}x{args.frames}",
        "repeats": args.repeats,
        "sequential_s": times["sequential"],
        "overlapped_s": times["overlapped"],
        "sequential_median_s": seq,
        "overlapped_median_s": ovl,
        "ratio": ovl / seq,
        "sequential_cpu_median_s": statistics.median(cpu_s["sequential"]),
        "overlapped_cpu_median_s": statistics.median(cpu_s["overlapped"]),
        "tiny": engine.weights.tiny,
        "preset": settings.encode_preset,
    }
    result.update(cpu_facts(engine))
    result["load_average"] = os.getloadavg()  # other work on the machine shares its cores with both sides
    print(
        f"decode+encode of {width}x{height}x{args.frames}, {args.repeats} interleaved repeats "
        f"({'tiny' if result['tiny'] else 'real'} checkpoint, x264 preset {settings.encode_preset})"
    )
    print(
        f"  cpu: {result['cpu']}; ATen {result['aten_isa']}, oneDNN limit {result['onednn_max_isa']}, "
        f"native bf16 {'yes' if result['native_bf16'] else 'no'} -> models compute in {result['dtype']} "
        f"on {result['threads']} thread(s)"
    )
    print(f"  load average (1, 5, 15 min) at the end: {', '.join(f'{v:.1f}' for v in result['load_average'])}")
    for side, median in (("sequential", seq), ("overlapped", ovl)):
        runs = ", ".join(f"{t:.3f}" for t in times[side])
        print(f"  {side}: median {median:6.3f} s wall, {result[side + '_cpu_median_s']:6.3f} s CPU  ({runs})")
    # Only what arrives while the decode still runs can overlap: ltx-core's tiled decode yields a temporal chunk
    # once the next group is decoded, so the last two chunks come out together.
    result["chunks"] = [{"frames": f, "at_s": round(t, 3)} for f, t in arrivals]
    print("  chunks out of the VAE (frames @ s):", ", ".join(f"{f} @ {t:.2f}" for f, t in arrivals))
    print(f"  overlapped / sequential = {result['ratio']:.2f}x (goal <= 0.7x)")
    return result


if __name__ == "__main__":
    main()
