"""Tests for ltx2.media: single-pass MP4 encoding with speed change, probing, audio input."""

from __future__ import annotations

import hashlib
import importlib.util
import struct
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from ltx2.media import (
    MediaError,
    MediaInfo,
    decode_frames,
    encode_mp4,
    encode_mp4_overlapped,
    probe,
    read_audio,
    sha256_file,
    thumbnail_from_mp4,
    write_thumbnail,
)

N = 25
SIZE = 64
SR = 24000
AAC_FRAME = 1024 / SR


def gradient_frames(n: int = N, h: int = SIZE, w: int = SIZE) -> np.ndarray:
    """Moving colour gradients; each frame differs so dropped/duplicated frames show."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        out[i, ..., 0] = (xx * 4 + i * 8) % 256
        out[i, ..., 1] = (yy * 4 + i * 5) % 256
        out[i, ..., 2] = 128 + 100 * np.sin((xx + yy) / 16 + i / 4)
    return out


def chunked(frames: np.ndarray, size: int = 8):
    # A generator, like the VAE decoder: can only be consumed once, lazily.
    for i in range(0, len(frames), size):
        yield frames[i : i + size]


def sine(seconds: float, freq: float = 440.0, rate: int = SR, channels: int = 2, amp: float = 0.5):
    t = np.arange(int(round(seconds * rate))) / rate
    return np.repeat((amp * np.sin(2 * np.pi * freq * t))[None], channels, axis=0).astype(np.float32)


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))


def top_level_boxes(path: Path) -> list[str]:
    data = path.read_bytes()
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        pos += size
    return boxes


# --------------------------------------------------------------------------- encode


@pytest.mark.parametrize("fps", [24, 25])
@pytest.mark.parametrize("speed", [1.0, 1.25, 0.5, 2.0])
def test_encode_retimes_every_frame_and_matches_audio(tmp_path, fps, speed):
    frames = gradient_frames()
    audio = sine(N / fps)
    out = encode_mp4(chunked(frames), fps, tmp_path / "out.mp4", audio=audio, sample_rate=SR, speed=speed)

    assert out == tmp_path / "out.mp4" and out.is_file()
    info = probe(out)
    assert isinstance(info, MediaInfo)
    assert info.has_video and info.has_audio
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert (info.width, info.height) == (SIZE, SIZE)
    assert info.frames == N  # no frame dropped or duplicated by the retime

    rate = fps * speed
    assert info.fps == pytest.approx(rate, rel=1e-6)
    expected = N / rate
    assert abs(info.video_duration - expected) <= 1 / rate
    assert abs(info.duration - expected) <= 1 / rate
    assert abs(info.audio_duration - info.video_duration) <= AAC_FRAME + 1 / rate
    assert (info.audio_rate, info.audio_channels) == (SR, 2)

    # Picture survives encoding in order (4:2:0 chroma smears the wrap edges, so use the median).
    decoded = decode_frames(out)
    assert decoded.shape == frames.shape and decoded.dtype == np.uint8
    err = np.abs(decoded.astype(int) - frames.astype(int))
    assert np.median(err) <= 3
    per_frame = err.mean(axis=(1, 2, 3))
    shifted = np.abs(decoded[1:].astype(int) - frames[:-1].astype(int)).mean(axis=(1, 2, 3))
    assert (per_frame[1:] < shifted).all()  # each frame is closest to its own source


def test_colours_are_not_shifted(tmp_path):
    # A BT.601/709 or full/limited range mix-up shows as tinted skin and washed-out primaries.
    colours = np.array(
        [
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [210, 170, 140],
            [128, 128, 128],
            [20, 200, 220],
            [16, 16, 16],
            [240, 240, 240],
        ],
        np.uint8,
    )
    frames = np.ascontiguousarray(np.broadcast_to(colours[:, None, None, :], (len(colours), SIZE, SIZE, 3)))
    decoded = decode_frames(encode_mp4([frames], 25, tmp_path / "c.mp4"))
    centre = decoded[:, SIZE // 2, SIZE // 2].astype(int)
    assert np.abs(centre - colours.astype(int)).max() <= 4, centre


def test_fractional_container_rate(tmp_path):
    out = encode_mp4(chunked(gradient_frames()), 25, tmp_path / "a.mp4", speed=1.25)
    with av.open(str(out)) as c:
        assert c.streams.video[0].average_rate == Fraction(125, 4)
    assert not probe(out).has_audio


def test_single_pass_output_is_faststart_mp4(tmp_path):
    out = encode_mp4(chunked(gradient_frames()), 24, tmp_path / "a.mp4", audio=sine(1.1), sample_rate=SR)
    boxes = top_level_boxes(out)
    assert boxes[0] == "ftyp"
    # Browsers can only start playback before the download ends if moov precedes mdat.
    assert boxes.index("moov") < boxes.index("mdat")


def test_atempo_keeps_pitch_and_compresses_time(tmp_path):
    # 1 s of 440 Hz then 1 s of 880 Hz under 2 s of video, played at 1.25x.
    audio = np.concatenate([sine(1.0, 440), sine(1.0, 880)], axis=1)
    out = encode_mp4(chunked(gradient_frames(48)), 24, tmp_path / "fast.mp4", audio=audio, sample_rate=SR, speed=1.25)
    got, rate = read_audio(out)
    assert rate == SR
    first = got[0, int(0.1 * rate) : int(0.7 * rate)]
    second = got[0, int(0.85 * rate) : int(0.98 * rate)]
    for part in (first, second):
        assert np.sqrt(np.mean(part**2)) > 0.2  # audible, not silence
    # A plain resample would land on 550/1100 Hz; atempo must keep the pitch.
    assert dominant_hz(first, rate) == pytest.approx(440, rel=0.03)
    # The tone change moves from 1.0 s to 0.8 s, so 0.85-0.98 s is already 880 Hz;
    # trimming instead of time-stretching would still play 440 Hz there.
    assert dominant_hz(second, rate) == pytest.approx(880, rel=0.03)


def test_long_audio_is_trimmed_to_video(tmp_path):
    out = encode_mp4(chunked(gradient_frames()), 25, tmp_path / "a.mp4", audio=sine(5.0), sample_rate=SR)
    info = probe(out)
    assert info.video_duration == pytest.approx(1.0, abs=1 / 25)
    assert abs(info.audio_duration - info.video_duration) <= AAC_FRAME + 1 / 25


@pytest.mark.parametrize("speed", [1.0, 1.25])
def test_short_audio_is_padded_with_silence(tmp_path, speed):
    out = encode_mp4(chunked(gradient_frames()), 25, tmp_path / "a.mp4", audio=sine(0.3), sample_rate=SR, speed=speed)
    info = probe(out)
    assert abs(info.audio_duration - info.video_duration) <= AAC_FRAME + 1 / (25 * speed)
    audio, rate = read_audio(out)
    tone_end = int(0.3 / speed * rate)
    assert np.sqrt(np.mean(audio[:, rate // 20 : tone_end - rate // 20] ** 2)) > 0.2
    assert np.abs(audio[:, tone_end + rate // 10 :]).max() < 0.02  # the padding is silent


def test_mono_audio_becomes_stereo_at_full_level(tmp_path):
    out = encode_mp4(chunked(gradient_frames()), 25, tmp_path / "a.mp4", audio=sine(1.0, channels=1), sample_rate=SR)
    assert probe(out).audio_channels == 2
    audio, _ = read_audio(out)
    body = audio[:, SR // 10 : -SR // 10]
    rms = np.sqrt(np.mean(body**2, axis=1))
    assert rms == pytest.approx([0.5 / np.sqrt(2)] * 2, rel=0.1)  # no -3 dB pan-law loss
    assert np.abs(body[0] - body[1]).max() < 0.01


def test_unusual_sample_rate_is_resampled_for_aac(tmp_path):
    out = encode_mp4(chunked(gradient_frames()), 25, tmp_path / "a.mp4", audio=sine(1.0, rate=22000), sample_rate=22000)
    info = probe(out)
    assert info.audio_rate == 48000
    audio, rate = read_audio(out)
    assert dominant_hz(audio[0, rate // 10 : -rate // 10], rate) == pytest.approx(440, rel=0.02)


@pytest.mark.parametrize("speed", [0.4, 2.5, float("nan")])
def test_speed_out_of_range_rejected(tmp_path, speed):
    with pytest.raises(ValueError, match="speed"):
        encode_mp4(chunked(gradient_frames()), 25, tmp_path / "a.mp4", speed=speed)
    assert list(tmp_path.iterdir()) == []


def test_metadata_round_trips(tmp_path):
    meta = {"avatar_model": "tiny", "title": "Hello avatar", "comment": "seed=7", "prompt": "ünïcode ok"}
    out = encode_mp4(chunked(gradient_frames()), 25, tmp_path / "a.mp4", metadata=meta)
    got = probe(out).metadata
    for k, v in meta.items():
        assert got.get(k) == v, (k, got)


def test_failed_encode_leaves_nothing_behind(tmp_path):
    def broken():
        frames = gradient_frames()
        yield frames[:8]
        yield frames[8:16]
        raise RuntimeError("decoder ran out of memory")

    target = tmp_path / "a.mp4"
    with pytest.raises(RuntimeError, match="out of memory"):
        encode_mp4(broken(), 25, target, audio=sine(1.0), sample_rate=SR, speed=1.25)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no stray temp file either


def test_failed_encode_keeps_previous_output(tmp_path):
    target = encode_mp4(chunked(gradient_frames()), 25, tmp_path / "a.mp4")
    before = sha256_file(target)

    def broken():
        yield gradient_frames(4)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        encode_mp4(broken(), 25, target)
    assert sha256_file(target) == before


def test_bad_video_input_rejected(tmp_path):
    with pytest.raises(ValueError, match="no frames"):
        encode_mp4(iter([]), 25, tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="uint8"):
        encode_mp4([gradient_frames().astype(np.float32)], 25, tmp_path / "b.mp4")
    with pytest.raises(ValueError, match="even"):
        encode_mp4([gradient_frames(h=63)], 25, tmp_path / "c.mp4")
    assert list(tmp_path.iterdir()) == []


def test_sha256_file_matches_hashlib(tmp_path):
    # Note: no bit-exactness test of the MP4 itself: the bundled libx264 was seen
    # giving different bytes run to run for tiny (64/96 px) frames even single-threaded.
    out = encode_mp4(chunked(gradient_frames()), 25, tmp_path / "a.mp4", audio=sine(1.0), sample_rate=SR)
    assert sha256_file(out) == hashlib.sha256(out.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- thumbnails


def test_write_thumbnail_is_jpeg_with_max_side(tmp_path):
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[:, :320] = (255, 0, 0)
    out = write_thumbnail(frame, tmp_path / "thumb.jpg", max_side=512)
    assert out.read_bytes()[:2] == b"\xff\xd8"
    with Image.open(out) as img:
        assert img.format == "JPEG"
        assert img.size == (512, 288)  # aspect kept
        left = np.asarray(img.convert("RGB"))[:, :200].mean(axis=(0, 1))
    assert left[0] > 200 and left[1] < 40


def test_thumbnail_from_mp4_picks_frame_at_fraction(tmp_path):
    # Each frame is a flat grey whose level encodes its index.
    frames = np.repeat(np.repeat((np.arange(N) * 10)[:, None, None, None], SIZE, 1), SIZE, 2)
    frames = np.repeat(frames, 3, axis=3).astype(np.uint8)
    mp4 = encode_mp4(chunked(frames), 25, tmp_path / "a.mp4")
    out = thumbnail_from_mp4(mp4, tmp_path / "t.jpg", at_fraction=0.3)
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == (SIZE, SIZE)  # never upscaled
        level = np.asarray(img.convert("L")).mean()
    assert abs(level / 10 - 0.3 * N) <= 1.5


# --------------------------------------------------------------------------- audio input


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """Write int16 PCM WAV with PyAV (channels-first float input)."""
    layout = "mono" if samples.shape[0] == 1 else "stereo"
    with av.open(str(path), "w", format="wav") as c:
        s = c.add_stream("pcm_s16le", rate=rate, layout=layout)
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(pcm.T.reshape(1, -1).copy(), format="s16", layout=layout)
        frame.sample_rate = rate
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    return path


def test_read_audio_wav_duration_and_rate(tmp_path):
    wav = write_wav(tmp_path / "a.wav", sine(1.5, freq=300, rate=16000, channels=1), 16000)
    audio, rate = read_audio(wav)
    assert rate == 16000
    assert audio.dtype == np.float32 and audio.shape == (2, 24000)  # mono up-mixed
    assert np.array_equal(audio[0], audio[1])
    assert np.abs(audio).max() == pytest.approx(0.5, abs=0.01)  # unity gain

    audio, rate = read_audio(wav, target_rate=24000, channels=1)
    assert rate == 24000 and audio.shape[0] == 1
    assert audio.shape[1] == pytest.approx(36000, abs=64)
    assert dominant_hz(audio[0], rate) == pytest.approx(300, rel=0.01)


@pytest.mark.parametrize(
    "ext,fmt,codec,rate",
    [
        ("mp3", "mp3", "libmp3lame", 44100),
        ("m4a", "mp4", "aac", 48000),
        ("ogg", "ogg", "libopus", 48000),
        ("webm", "webm", "libopus", 48000),
        ("flac", "flac", "flac", 22050),
    ],
)
def test_read_audio_common_upload_formats(tmp_path, ext, fmt, codec, rate):
    if codec not in av.codecs_available:
        pytest.skip(f"{codec} not in this FFmpeg build")
    path = tmp_path / f"voice.{ext}"
    tone = sine(1.0, freq=500, rate=rate, channels=1)
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=rate, layout="mono")
        frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        c.mux(s.encode(frame))
        c.mux(s.encode(None))
    audio, got_rate = read_audio(path, target_rate=SR)
    assert got_rate == SR and audio.shape[0] == 2
    # Lossy codecs add priming/padding; allow a few codec frames either way.
    assert audio.shape[1] / SR == pytest.approx(1.0, abs=0.1)
    assert dominant_hz(audio[0], SR) == pytest.approx(500, rel=0.02)


def test_read_audio_start_and_max_seconds(tmp_path):
    rate = 16000
    ramp = np.linspace(-0.9, 0.9, 2 * rate, dtype=np.float32)[None]  # value encodes time
    wav = write_wav(tmp_path / "ramp.wav", ramp, rate)
    audio, got_rate = read_audio(wav, start=0.5, max_seconds=0.25)
    assert got_rate == rate and audio.shape == (2, rate // 4)
    assert audio[0, 0] == pytest.approx(ramp[0, rate // 2], abs=2e-3)
    assert audio[0, -1] == pytest.approx(ramp[0, rate // 2 + rate // 4 - 1], abs=2e-3)


def test_read_audio_rejects_text_file(tmp_path):
    txt = tmp_path / "notes.txt"
    txt.write_text("definitely not audio\n" * 50)
    with pytest.raises(MediaError) as err:
        read_audio(txt)
    assert isinstance(err.value, ValueError)
    assert "notes.txt" in str(err.value)


def test_read_audio_rejects_video_without_audio(tmp_path):
    mp4 = encode_mp4(chunked(gradient_frames()), 25, tmp_path / "silent.mp4")
    with pytest.raises(MediaError, match="no audio stream"):
        read_audio(mp4)


def test_read_audio_missing_file(tmp_path):
    with pytest.raises(MediaError, match="not found"):
        read_audio(tmp_path / "nope.wav")


def test_probe_rejects_garbage(tmp_path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x01garbage" * 100)
    with pytest.raises(MediaError):
        probe(junk)
    with pytest.raises(MediaError):
        decode_frames(junk)


# --------------------------------------------------------------------------- benchmark


def test_encode_speed_bench_runs_small():
    path = Path(__file__).resolve().parents[2] / "bench" / "encode_speed.py"
    spec = importlib.util.spec_from_file_location("encode_speed_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    result = bench.main(["--frames", "9", "--size", "64x64", "--repeat", "1"])
    assert result["single_s"] > 0 and result["two_pass_s"] > 0
    assert result["ratio"] == pytest.approx(result["single_s"] / result["two_pass_s"])
    # Both approaches must produce the same thing for the comparison to mean anything.
    assert result["single_info"].frames == result["two_pass_info"].frames == 9
    assert result["single_info"].fps == pytest.approx(24 * 1.25)


# --------------------------------------------------------------------------- overlapped encode


def test_overlapped_encode_equals_the_sequential_one_and_counts_frames(tmp_path):
    frames = gradient_frames()
    audio = np.sin(np.linspace(0, 200, int(SR * N / 24)))[None].astype(np.float32)
    seq = encode_mp4(chunked(frames), 24, tmp_path / "seq.mp4", audio=audio, sample_rate=SR)
    counted: list[int] = []
    ovl = encode_mp4_overlapped(
        chunked(frames), 24, tmp_path / "ovl.mp4", audio=audio, sample_rate=SR, on_frames=counted.append
    )
    assert np.array_equal(decode_frames(seq), decode_frames(ovl))
    assert counted == [0, 8, 16, 24, 25]
    assert probe(ovl).has_audio


def test_overlapped_encode_source_failure_leaves_no_file(tmp_path):
    def failing():
        yield from chunked(gradient_frames(16))
        raise RuntimeError("the VAE ran out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        encode_mp4_overlapped(failing(), 24, tmp_path / "x.mp4")
    assert list(tmp_path.iterdir()) == []


def test_overlapped_encode_failure_stops_the_source(tmp_path):
    pulled = []

    def source():
        for i in range(50):
            pulled.append(i)
            # The second chunk has another size: the encoder refuses it.
            yield gradient_frames(4, 64, 64) if i == 0 else gradient_frames(4, 32, 32)

    with pytest.raises(ValueError, match="frame size changed"):
        encode_mp4_overlapped(source(), 24, tmp_path / "x.mp4", depth=1)
    assert len(pulled) < 10  # the decode stopped soon after the encoder failed
    assert list(tmp_path.iterdir()) == []
