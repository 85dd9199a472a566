"""Single-pass speed-changed encode vs. the old encode-then-re-encode approach.

    python bench/encode_speed.py [--frames 121 --size 512x512 --repeat 3]

(a) ``encode_mp4(..., speed=1.25)``: retime + atempo inside the one encode.
(b) two passes, as the old pipeline did with a second ffmpeg run: encode at
    speed 1.0, then decode that MP4 and re-encode it with the video retimed to
    fps*speed and atempo on the audio. Pass two is done with PyAV the way the
    ffmpeg CLI would: threaded decode, yuv420p frames straight into libx264
    (no RGB round trip), same crf/preset, same faststart muxing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import numpy as np

try:
    from ltx2.media import encode_mp4, probe
except ImportError:  # run as a script: bench/ is sys.path[0], not the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from ltx2.media import encode_mp4, probe


def _texture(rng, height: int, width: int, amp: float) -> np.ndarray:
    # Smoothed noise: fine detail like skin/hair/fabric rather than per-frame sensor grain.
    noise = rng.normal(0, 1, size=(height + 2, width + 2)).astype(np.float32)
    smooth = sum(noise[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3)) / 3
    return amp * smooth[..., None]


def make_clip(frames: int, width: int, height: int, fps: float, rate: int, seed: int = 0):
    """A talking-head-like clip: panning textured background, moving textured face, speech-ish audio.

    Detail moves coherently with the content (as in decoded video), so pass two
    of the old pipeline does not get an artificially easier input than pass one.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    bg_tex = _texture(rng, height, width, 10)
    face_tex = _texture(rng, height, width, 6)
    video = np.empty((frames, height, width, 3), np.uint8)
    for i in range(frames):
        t = i / fps
        pan_x, pan_y = int(t * 12) % width, int(t * 5) % height  # slow camera drift
        bg = np.stack(
            [
                96 + 60 * np.sin(xx / width * 3 + t * 0.7),
                80 + 50 * np.cos(yy / height * 2 - t * 0.5),
                120 + 40 * np.sin((xx + yy) / (width + height) * 4 + t),
            ],
            axis=-1,
        ) + np.roll(bg_tex, (pan_y, pan_x), axis=(0, 1))
        cx = width * (0.5 + 0.08 * np.sin(t * 1.3))
        cy = height * (0.45 + 0.05 * np.cos(t * 0.9))
        face = ((xx - cx) / (0.22 * width)) ** 2 + ((yy - cy) / (0.3 * height)) ** 2 < 1
        shift = (int(cy - height * 0.45), int(cx - width * 0.5))
        skin = np.array([210, 170, 140], np.float32) + np.roll(face_tex, shift, axis=(0, 1))
        bg[face] = skin[face]
        mouth_open = 0.02 + 0.03 * abs(np.sin(t * 9))  # lip motion at syllable rate
        mouth = ((xx - cx) / (0.08 * width)) ** 2 + ((yy - cy - 0.15 * height) / (mouth_open * height)) ** 2 < 1
        bg[mouth] = (90, 30, 40)
        video[i] = np.clip(bg, 0, 255).astype(np.uint8)

    n = int(round(frames / fps * rate))
    t = np.arange(n) / rate
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t) + 15 * np.sin(2 * np.pi * 3.1 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voiced = sum(np.sin(k * phase) / k * np.exp(-(((k * f0 - 700) / 900) ** 2)) for k in range(1, 25))
    envelope = np.clip(np.sin(2 * np.pi * 4.3 * t), 0, None) ** 0.7  # ~4 syllables/s
    hiss = rng.normal(0, 0.05, n) * (np.sin(2 * np.pi * 1.7 * t) > 0.6)  # fricative bursts
    mono = 0.5 * voiced * envelope / (np.abs(voiced).max() + 1e-9) + hiss
    audio = np.stack([mono, mono * 0.9]).astype(np.float32).clip(-1, 1)
    return video, audio


def _chunks(video: np.ndarray, size: int = 8):
    # Mimics the VAE decoder handing over a few frames at a time.
    for i in range(0, len(video), size):
        yield video[i : i + size]


def _pull(graph):
    out = []
    while True:
        try:
            out.append(graph.pull())
        except (av.error.BlockingIOError, av.error.EOFError):
            return out


def reencode_with_speed(src: Path, dst: Path, speed: float, crf: int, preset: str) -> None:
    """Second pass of the old pipeline: decode src, retime to fps*speed, atempo, re-encode."""
    with av.open(str(src)) as inp:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"  # the ffmpeg CLI decodes with threads by default
        ain = inp.streams.audio[0] if inp.streams.audio else None
        rate = Fraction(vin.average_rate) * Fraction(speed).limit_denominator(1000)
        out = av.open(str(dst), "w", format="mp4", container_options={"movflags": "+faststart+use_metadata_tags"})
        with out:
            vout = out.add_stream("libx264", rate=rate, options={"crf": str(crf), "preset": preset})
            vout.width, vout.height, vout.pix_fmt = vin.width, vin.height, "yuv420p"
            cc = vout.codec_context
            cc.thread_type, cc.thread_count = "FRAME", 0  # same threading as encode_mp4 / ffmpeg CLI
            cc.colorspace = cc.color_primaries = cc.color_trc = 1
            cc.color_range = 1
            graph = aout = None
            if ain is not None:
                arate = ain.codec_context.sample_rate
                aout = out.add_stream("aac", rate=arate, layout="stereo")
                graph = av.filter.Graph()
                graph.link_nodes(
                    graph.add_abuffer(
                        sample_rate=arate,
                        format=ain.codec_context.format.name,
                        layout="stereo",
                        time_base=Fraction(1, arate),
                    ),
                    graph.add("atempo", tempo=str(speed)),
                    graph.add("aformat", sample_fmts="fltp", sample_rates=str(arate), channel_layouts="stereo"),
                    graph.add("abuffersink"),
                ).configure()
            n_video = n_audio = 0
            streams = [vin] + ([ain] if ain is not None else [])
            for frame in inp.decode(*streams):
                if isinstance(frame, av.VideoFrame):
                    frame.pict_type = av.video.frame.PictureType.NONE  # let x264 pick frame types
                    frame.time_base = Fraction(1) / rate
                    frame.pts = n_video
                    n_video += 1
                    out.mux(vout.encode(frame))
                else:
                    frame.pts = None  # atempo restamps; source pts are irrelevant after retiming
                    graph.push(frame)
                    for f in _pull(graph):
                        f.pts, f.time_base = n_audio, Fraction(1, f.sample_rate)
                        n_audio += f.samples
                        out.mux(aout.encode(f))
            out.mux(vout.encode(None))
            if graph is not None:
                graph.push(None)
                for f in _pull(graph):
                    f.pts, f.time_base = n_audio, Fraction(1, f.sample_rate)
                    n_audio += f.samples
                    out.mux(aout.encode(f))
                out.mux(aout.encode(None))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=121)
    ap.add_argument("--size", default="512x512", help="WIDTHxHEIGHT (even numbers)")
    ap.add_argument("--fps", type=float, default=24.0)
    ap.add_argument("--speed", type=float, default=1.25)
    ap.add_argument("--audio-rate", type=int, default=24000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--crf", type=int, default=18)
    ap.add_argument("--preset", default="veryfast")
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    video, audio = make_clip(args.frames, width, height, args.fps, args.audio_rate)
    common = dict(audio=audio, sample_rate=args.audio_rate, crf=args.crf, preset=args.preset)

    single_runs, two_runs = [], []
    with tempfile.TemporaryDirectory(prefix="encode_speed_") as tmp:
        tmp = Path(tmp)
        single_out, mid_out, two_out = tmp / "single.mp4", tmp / "pass1.mp4", tmp / "two_pass.mp4"
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            encode_mp4(_chunks(video), args.fps, single_out, speed=args.speed, **common)
            single_runs.append(time.perf_counter() - t0)

            t0 = time.perf_counter()
            encode_mp4(_chunks(video), args.fps, mid_out, speed=1.0, **common)
            reencode_with_speed(mid_out, two_out, args.speed, args.crf, args.preset)
            two_runs.append(time.perf_counter() - t0)

        a, b = probe(single_out), probe(two_out)

    single, two = statistics.median(single_runs), statistics.median(two_runs)
    result = {
        "frames": args.frames,
        "size": f"{width}x{height}",
        "fps": args.fps,
        "speed": args.speed,
        "repeat": args.repeat,
        "single_s": single,
        "two_pass_s": two,
        "ratio": single / two,
        "single_runs": single_runs,
        "two_pass_runs": two_runs,
        "single_info": a,
        "two_pass_info": b,
    }
    print(
        f"clip: {args.frames} frames {width}x{height} @ {args.fps:g} fps, speed {args.speed:g}, "
        f"audio {args.audio_rate} Hz, x264 crf {args.crf} preset {args.preset}, repeat {args.repeat}"
    )
    print(f"{'approach':<28}{'median s':>10}{'frames':>8}{'fps':>8}{'video s':>9}{'audio s':>9}")
    for name, t, info in (("single pass (encode_mp4)", single, a), ("two pass (encode+re-enc)", two, b)):
        print(
            f"{name:<28}{t:>10.3f}{info.frames:>8}{info.fps:>8.2f}"
            f"{info.video_duration:>9.3f}{(info.audio_duration or 0):>9.3f}"
        )
    print(f"ratio single/two-pass: {single / two:.3f}  (goal <= 0.5)")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
