"""Decode and encode overlapped vs one after the other, side by side in one run (issue 19, goal <= 0.7x).

Each repeat generates the same clip twice on the resident engine (the tiny checkpoint on a machine without real
weights) and times only the phase after denoising: the VAE decoding its chunks plus the PyAV encode. The
sequential side is `encode_mp4` pulling the lazy decode itself (decode a chunk, encode it, decode the next);
the overlapped side is `encode_mp4_overlapped` (what `render` uses: the encoder on its own thread, fed each
chunk as the VAE finishes it). Repeats interleave the two sides (ABBA) so drift on a shared machine hits both.

With --tiles the VAE's temporal tiling (frames/overlap, AVATAR_DECODE_TILE_FRAMES / _OVERLAP_FRAMES) varies too:
each tiling's two sides run interleaved with the others', every ratio against the release tiling's sequential side
(a smaller tile hands its first frames to the encoder sooner, and decodes a different number of frames).

    python bench/decode_encode_overlap.py [--repeats 4 --size 256x256 --frames 121 --tiles 64/24,32/8]
"""

from __future__ import annotations

import argparse
import dataclasses
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
    parser.add_argument(
        "--tiles",
        default="64/24",
        help="comma-separated temporal tilings FRAMES/OVERLAP to compare; the first is the reference (release 64/24)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = _args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    tilings = [tuple(int(v) for v in t.split("/")) for t in args.tiles.split(",")]

    from ltx_core.model.video_vae import TemporalTilingConfig

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
    sides = [(tiling, mode) for tiling in tilings for mode in encoders]

    def label(side) -> str:
        (frames, overlap), mode = side
        return f"{frames}/{overlap} {mode}"

    times: dict[str, list[float]] = {label(side): [] for side in sides}
    cpu_s: dict[str, list[float]] = {label(side): [] for side in sides}
    arrivals: dict[str, list[tuple[int, float]]] = {}  # (frames, seconds into the phase) of each tiling's last run

    def timed(chunks, start: float, seen: list):
        seen.clear()
        for chunk in chunks:
            seen.append((len(chunk), time.perf_counter() - start))
            yield chunk

    def encode(encoder, video, result, name: str) -> None:
        encoder(
            video,
            request.fps,
            out / f"{name}.mp4",
            audio=result.audio.waveform.float().cpu().numpy(),
            sample_rate=result.audio.sampling_rate,
            preset=settings.encode_preset,
        )

    def one(side, n: int) -> float:
        tiling, mode = side
        engine.tiling = dataclasses.replace(engine.tiling, temporal_config=TemporalTilingConfig(*tiling))
        with engine.exclusive("the bench"):
            result = engine.generate(request)
            start, cpu = time.perf_counter(), time.process_time()
            video = result.video
            if mode == "overlapped":
                video = timed(video, start, arrivals.setdefault(f"{tiling[0]}/{tiling[1]}", []))
            encode(encoders[mode], video, result, f"{label(side).replace('/', '-').replace(' ', '-')}-{n}")
            if n >= 0:
                cpu_s[label(side)].append(time.process_time() - cpu)  # every thread of this process, x264's too
            return time.perf_counter() - start

    for side in sides:  # warm every path once (first-call allocations, x264 init)
        one(side, -1)
    for n in range(args.repeats):
        # ABBA: the order reverses every repeat, so drift on a shared machine hits every side alike.
        for side in sides if n % 2 == 0 else reversed(sides):
            times[label(side)].append(one(side, n))

    # The floor of any overlap: the phase cannot end before its longer side does. Decode alone (every chunk
    # pulled into memory) and encode alone (from those chunks), release tiling, same repeats.
    engine.tiling = dataclasses.replace(engine.tiling, temporal_config=TemporalTilingConfig(*tilings[0]))
    apart: dict[str, list[float]] = {"decode": [], "encode": []}
    for n in range(args.repeats):
        with engine.exclusive("the bench"):
            result = engine.generate(request)
            start = time.perf_counter()
            chunks = list(result.video)
            apart["decode"].append(time.perf_counter() - start)
            start = time.perf_counter()
            encode(encode_mp4, chunks, result, f"apart-{n}")
            apart["encode"].append(time.perf_counter() - start)
    decode_s, encode_s = (statistics.median(apart[k]) for k in ("decode", "encode"))

    medians = {k: statistics.median(v) for k, v in times.items()}
    reference = medians[label((tilings[0], "sequential"))]
    result = {
        "size": f"{width}x{height}x{args.frames}",
        "repeats": args.repeats,
        "times_s": times,
        "median_s": medians,
        "cpu_median_s": {k: statistics.median(v) for k, v in cpu_s.items()},
        "ratio_to_reference": {k: v / reference for k, v in medians.items()},
        "tiny": engine.weights.tiny,
        "preset": settings.encode_preset,
    }
    # The figure: the release tiling overlapped against the release tiling one after the other.
    result["ratio"] = medians[label((tilings[0], "overlapped"))] / reference
    result.update(decode_alone_s=decode_s, encode_alone_s=encode_s, floor=max(decode_s, encode_s) / reference)
    result.update(cpu_facts(engine))
    result["load_average"] = os.getloadavg()  # other work on the machine shares its cores with every side
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
    ref_label = label((tilings[0], "sequential"))
    for key, median in medians.items():
        runs = ", ".join(f"{t:.3f}" for t in times[key])
        print(
            f"  tiles {key:>18}: median {median:6.3f} s wall, {result['cpu_median_s'][key]:6.3f} s CPU, "
            f"{median / reference:.2f}x of {ref_label}  ({runs})"
        )
    # Only what arrives while the decode still runs can overlap: ltx-core's tiled decode yields a temporal chunk
    # once the next tile is decoded, so the last two chunks come out together.
    result["chunks"] = {k: [{"frames": f, "at_s": round(t, 3)} for f, t in v] for k, v in arrivals.items()}
    for key, seen in arrivals.items():
        print(f"  tiles {key}: chunks out of the VAE (frames @ s):", ", ".join(f"{f} @ {t:.2f}" for f, t in seen))
    print(
        f"  apart, tiles {tilings[0][0]}/{tilings[0][1]}: decode {decode_s:.3f} s, encode {encode_s:.3f} s -> no "
        f"overlap can go below {result['floor']:.2f}x (the longer side alone)"
    )
    print(f"  release tiling, overlapped / sequential = {result['ratio']:.2f}x (goal <= 0.7x)")
    best = min(medians, key=medians.get)
    print(f"  fastest: tiles {best}, {medians[best] / reference:.2f}x of {ref_label}")
    return result


if __name__ == "__main__":
    main()
