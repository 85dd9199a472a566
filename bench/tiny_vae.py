"""The default studio clip on the tiny set with a random video VAE vs the trained one, side by side.

    .venv/bin/python bench/tiny_vae.py [--size 128x128] [--text "..."] [--repeat 1]

Both sets are built fresh (same architecture; only the video VAE's weights differ) and run the studio's default
clip (its text, description, seed 42 and size on the tiny checkpoint). Phases, each timed on its own run of the
same request: generate (prompt encoding and denoising, up to the lazy video), VAE decode (materialising every
frame), x264 encode (the decoded frames into the MP4, audio included), and the MP4's size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

try:
    from frontend.config import DEFAULT_DESCRIPTION, DEFAULT_TEXT
except ImportError:  # run as a script: bench/ is sys.path[0], not the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from frontend.config import DEFAULT_DESCRIPTION, DEFAULT_TEXT

import torch

from ltx2.engine.pipelines import Engine, EngineWeights
from ltx2.engine.tiny import build_tiny
from ltx2.media import encode_mp4
from ltx2.render import ClipSpec
from ltx2.render.clip import plan_request
from ltx2.settings import Settings


def measure(engine: Engine, request, out: Path) -> dict[str, float]:
    with engine.exclusive("bench"):
        start = time.perf_counter()
        result = engine.generate(request)
        generated = time.perf_counter()
        frames = [chunk for chunk in result.video]  # the decode is lazy: this runs the VAE decoder
        decoded = time.perf_counter()
    waveform = result.audio.waveform.float().cpu().numpy()
    encode_start = time.perf_counter()
    encode_mp4(iter(frames), request.fps, out, audio=waveform, sample_rate=result.audio.sampling_rate)
    encoded = time.perf_counter()
    return {
        "generate_s": generated - start,
        "vae_decode_s": decoded - generated,
        "x264_encode_s": encoded - encode_start,
        "total_s": encoded - start,
        "mp4_kb": out.stat().st_size / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="128x128", help="WxH (the studio's default on the tiny checkpoint)")
    parser.add_argument("--text", default=DEFAULT_TEXT)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    settings = Settings()
    spec = ClipSpec(text=args.text, avatar_description=DEFAULT_DESCRIPTION, seed=42, width=width, height=height)
    request = plan_request(spec, settings)
    print(f"default studio clip: {width}x{height}, {request.num_frames} frames at {request.fps:g} fps, {request.mode}")
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, trained in (("random VAE", False), ("trained VAE", True)):
            tiny = build_tiny(Path(tmp) / name.replace(" ", "-"), trained_video_vae=trained)
            engine = Engine(
                EngineWeights(tiny.checkpoint, tiny.gemma_root, tiny.spatial_upsampler, tiny.distilled_lora, tiny=True),
                device="cpu",
            )
            runs = []
            for i in range(args.repeat + 1):  # the first run warms the resident models and is not counted
                with torch.inference_mode():
                    runs.append(measure(engine, request, Path(tmp) / f"{name}-{i}.mp4"))
            rows[name] = {key: statistics.median(r[key] for r in runs[1:]) for key in runs[0]}
            del engine
    names = list(rows)
    print(f"{'':16}" + "".join(f"{n:>14}" for n in names))
    for key in rows[names[0]]:
        print(f"{key:16}" + "".join(f"{rows[n][key]:14.2f}" for n in names))


if __name__ == "__main__":
    main()
