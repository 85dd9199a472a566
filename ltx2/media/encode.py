"""Single-pass MP4 encoding (H.264 + AAC) with optional playback-speed change.

Everything goes through PyAV so there is no ffmpeg subprocess and no second
re-encode pass: the speed change is done by retiming the video frames
(container frame rate = fps * speed) and by an ``atempo`` filter on the audio.
"""

from __future__ import annotations

import os
import queue
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.filter
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter
from PIL import Image

from ltx2.domain.limits import MAX_SPEED, MIN_SPEED

__all__ = [
    "MediaError",
    "encode_mp4",
    "encode_mp4_overlapped",
    "feed_encoder",
    "write_thumbnail",
    "thumbnail_from_mp4",
    "read_audio",
    "MIN_SPEED",
    "MAX_SPEED",
]


# Sample rates the AAC encoder accepts; anything else is resampled to 48 kHz.
_AAC_RATES = {96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
_FALLBACK_AUDIO_RATE = 48000
# BT.709 code point shared by the matrix/primaries/transfer enums in FFmpeg.
_BT709 = 1


class MediaError(ValueError):
    """A media file is missing, has no usable stream, or cannot be decoded."""


# --------------------------------------------------------------------------- helpers


def _to_numpy(x: Any) -> np.ndarray:
    # torch tensors may live on GPU or require grad; numpy() needs a plain CPU tensor.
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _as_fraction(value: float | int | Fraction, max_den: int) -> Fraction:
    if isinstance(value, Fraction):
        return value
    # limit_denominator turns binary floats such as 29.97002997 back into 30000/1001.
    return Fraction(value).limit_denominator(max_den)


def _validate_speed(speed: float) -> Fraction:
    try:
        s = float(speed)
    except (TypeError, ValueError):
        raise ValueError(f"speed must be a number, got {speed!r}") from None
    if not (MIN_SPEED <= s <= MAX_SPEED):  # also rejects NaN
        raise ValueError(f"speed must be between {MIN_SPEED} and {MAX_SPEED}, got {speed!r}")
    return _as_fraction(speed, 1000)


def _prepare_audio(audio: Any) -> np.ndarray:
    """Return contiguous float32 stereo [2, samples] clipped to [-1, 1]."""
    a = _to_numpy(audio)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[0] not in (1, 2):
        raise ValueError(f"audio must be shaped [channels(1|2), samples], got {tuple(a.shape)}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"audio must be float in [-1, 1], got dtype {a.dtype}")
    a = np.clip(a.astype(np.float32, copy=False), -1.0, 1.0)
    if a.shape[0] == 1:
        # Duplicate rather than let swresample upmix, which would attenuate by 3 dB.
        a = np.repeat(a, 2, axis=0)
    return np.ascontiguousarray(a)


def _pull_all(graph: av.filter.Graph) -> list[av.AudioFrame]:
    frames = []
    while True:
        try:
            frames.append(graph.pull())
        except (av.error.BlockingIOError, av.error.EOFError):
            return frames


def _tmp_sibling(out: Path, suffix: str) -> Path:
    # Same folder so os.replace is an atomic rename, never a cross-device copy.
    # Not mkstemp: its 0600 mode would survive os.replace and hide the file from a web server.
    return out.with_name(f".{out.stem}.{uuid.uuid4().hex[:12]}{suffix}")


class _AudioTrack:
    """Feeds source audio to the AAC encoder in step with the video frames.

    Source samples are pushed as far as the video has progressed (in source
    time), passed through ``atempo`` and capped at the retimed video length,
    so the audio ends exactly where the video ends and memory stays bounded.
    """

    def __init__(self, container, samples: np.ndarray, rate: int, fps: Fraction, speed: Fraction):
        self.container = container
        self.src = samples
        self.src_rate = rate
        self.fps = fps
        self.speed = speed
        self.out_rate = rate if rate in _AAC_RATES else _FALLBACK_AUDIO_RATE
        self.stream = container.add_stream("aac", rate=self.out_rate, layout="stereo")
        self.stream.codec_context.options = {"b": "192k"}
        self.fed = 0  # source samples pushed (including silence padding)
        self.emitted = 0  # output samples handed to the encoder
        self.pending: list[np.ndarray] = []
        self.graph = self._build_graph() if (speed != 1 or self.out_rate != rate) else None

    def _build_graph(self) -> av.filter.Graph:
        g = av.filter.Graph()
        nodes = [
            g.add_abuffer(
                sample_rate=self.src_rate, format="fltp", layout="stereo", time_base=Fraction(1, self.src_rate)
            )
        ]
        if self.speed != 1:
            # atempo changes tempo while keeping pitch (WSOLA-style overlap-add).
            nodes.append(g.add("atempo", tempo=str(float(self.speed))))
        nodes.append(g.add("aformat", sample_fmts="fltp", sample_rates=str(self.out_rate), channel_layouts="stereo"))
        nodes.append(g.add("abuffersink"))
        g.link_nodes(*nodes).configure()
        return g

    def _source_slice(self, start: int, stop: int) -> np.ndarray:
        # Audio shorter than the video is padded with silence; longer audio is
        # simply never read past the video's end.
        have = self.src[:, start : min(stop, self.src.shape[1])]
        if have.shape[1] == stop - start:
            return have
        out = np.zeros((2, stop - start), np.float32)
        out[:, : have.shape[1]] = have
        return out

    def _push(self, chunk: np.ndarray) -> None:
        if self.graph is None:
            self.pending.append(chunk)
            return
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout="stereo")
        frame.sample_rate = self.src_rate
        frame.time_base = Fraction(1, self.src_rate)
        frame.pts = self.fed
        self.graph.push(frame)
        self.pending.extend(f.to_ndarray() for f in _pull_all(self.graph))

    def _emit(self, cap: int) -> None:
        while self.pending and self.emitted < cap:
            chunk = self.pending.pop(0)
            take = min(chunk.shape[1], cap - self.emitted)
            if take < chunk.shape[1]:
                self.pending.insert(0, chunk[:, take:])
                chunk = chunk[:, :take]
            self._encode(chunk)

    def _encode(self, chunk: np.ndarray) -> None:
        if chunk.shape[1] == 0:
            return
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk, dtype=np.float32), format="fltp", layout="stereo"
        )
        frame.sample_rate = self.out_rate
        frame.time_base = Fraction(1, self.out_rate)
        frame.pts = self.emitted
        self.emitted += chunk.shape[1]
        # PyAV's AAC encoder context re-chunks to its 1024-sample frame_size itself.
        self.container.mux(self.stream.encode(frame))

    def _cap(self, n_frames: int) -> int:
        return round(Fraction(n_frames) * self.out_rate / (self.fps * self.speed))

    def advance(self, n_frames: int) -> None:
        target = round(Fraction(n_frames) * self.src_rate / self.fps)
        if target > self.fed:
            self._push(self._source_slice(self.fed, target))
            self.fed = target
        self._emit(self._cap(n_frames))

    def finish(self, n_frames: int) -> None:
        self.advance(n_frames)
        if self.graph is not None:
            self.graph.push(None)  # flush atempo's look-ahead
            self.pending.extend(f.to_ndarray() for f in _pull_all(self.graph))
        cap = self._cap(n_frames)
        self._emit(cap)
        if self.emitted < cap:
            self._encode(np.zeros((2, cap - self.emitted), np.float32))
        self.container.mux(self.stream.encode(None))


def _chunk_frames(chunk: Any) -> np.ndarray:
    arr = _to_numpy(chunk)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"video chunks must be shaped [f, h, w, 3], got {tuple(arr.shape)}")
    if arr.dtype != np.uint8:
        raise ValueError(f"video chunks must be uint8, got {arr.dtype}")
    return np.ascontiguousarray(arr)


def _first_chunk(chunks) -> np.ndarray | None:
    # A helper so no loop variable keeps the first chunk alive during the encode.
    for c in chunks:
        arr = _chunk_frames(c)
        if len(arr):
            return arr
    return None


# --------------------------------------------------------------------------- encode


def encode_mp4(
    video: Iterable[Any],
    fps: float,
    out_path: str | os.PathLike,
    *,
    audio: Any = None,
    sample_rate: int | None = None,
    speed: float = 1.0,
    metadata: dict[str, str] | None = None,
    crf: int = 18,
    preset: str = "veryfast",
    on_frames: Callable[[int], None] | None = None,
) -> Path:
    """Encode uint8 [f, h, w, 3] chunks (+ optional audio) to a faststart MP4.

    `preset`: x264's speed/size trade-off; crf sets the quality. "veryfast" encodes a 768x512x121 clip about 4x
    faster than "medium" at the same crf (bench/encode_speed.py --preset), for a slightly larger file; on a GPU
    host the encode is otherwise the largest stage of a warm clip (bench/gpu_fullsize.py).
    The speed change happens here: the container frame rate becomes
    ``fps * speed`` (all frames kept) and the audio goes through ``atempo``.
    Audio is trimmed or padded with silence to the retimed video duration.
    `on_frames(n)`: called after each chunk with the number of frames handed to the encoder so far.
    """
    speed_f = _validate_speed(speed)
    if not fps or float(fps) <= 0:
        raise ValueError(f"fps must be positive, got {fps!r}")
    fps_f = _as_fraction(fps, 10000)
    out_rate = fps_f * speed_f
    if audio is not None:
        if not sample_rate or int(sample_rate) <= 0:
            raise ValueError("sample_rate is required with audio")
        samples = _prepare_audio(audio)

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    chunks = iter(video)
    tmp = _tmp_sibling(out, ".part.mp4")
    container = None
    try:
        first = _first_chunk(chunks)
        if first is None:
            raise ValueError("video yielded no frames")
        height, width = first.shape[1:3]
        if width % 2 or height % 2:
            raise ValueError(f"yuv420p needs even width/height, got {width}x{height}")

        # use_metadata_tags: without it the mov muxer drops keys it has no atom for.
        container = av.open(str(tmp), "w", format="mp4", container_options={"movflags": "+faststart+use_metadata_tags"})
        if metadata:
            container.metadata.update({str(k): str(v) for k, v in metadata.items()})

        vstream = container.add_stream("libx264", rate=out_rate, options={"crf": str(int(crf)), "preset": preset})
        vstream.width, vstream.height, vstream.pix_fmt = width, height, "yuv420p"
        cc = vstream.codec_context
        # PyAV defaults to SLICE threading, which makes libx264 use sliced threads
        # (a low-latency mode); frame threads, the ffmpeg CLI default, encode faster.
        cc.thread_type = "FRAME"
        cc.thread_count = 0  # auto: x264 picks from the core count
        # Tag BT.709 so players do not guess the matrix from the frame size.
        cc.colorspace = cc.color_primaries = cc.color_trc = _BT709
        cc.color_range = int(ColorRange.MPEG)

        track = _AudioTrack(container, samples, int(sample_rate), fps_f, speed_f) if audio is not None else None

        reformatter = VideoReformatter()  # reuse one SwsContext for every frame
        n = 0
        if on_frames is not None:
            on_frames(0)  # the encode has begun (its first chunk is in hand)
        chunk, first = first, None  # drop the extra reference so chunk 0 can be freed
        while True:
            if chunk.shape[1:3] != (height, width):
                raise ValueError(f"frame size changed from {width}x{height} to {chunk.shape[2]}x{chunk.shape[1]}")
            for rgb in chunk:
                frame = reformatter.reformat(
                    av.VideoFrame.from_ndarray(rgb, format="rgb24"),
                    format="yuv420p",
                    dst_colorspace=Colorspace.ITU709,
                    dst_color_range=ColorRange.MPEG,
                )
                # pts counts frames at the retimed rate: the encoder time base is 1/(fps*speed).
                frame.pts = n
                container.mux(vstream.encode(frame))
                n += 1
            if track is not None:
                track.advance(n)
            if on_frames is not None:
                on_frames(n)
            nxt = next(chunks, None)
            if nxt is None:
                break
            chunk = _chunk_frames(nxt)

        container.mux(vstream.encode(None))
        if track is not None:
            track.finish(n)
        container.close()  # writes the trailer and performs the faststart rewrite
        container = None
        os.replace(tmp, out)
    except BaseException:
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001 - cleanup after a failed encode: the first error is the one to report
                pass
        tmp.unlink(missing_ok=True)
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # release a lazily decoding generator promptly
        raise
    return out


_END = object()


def encode_mp4_overlapped(
    video: Iterable[Any],
    fps: float,
    out_path: str | os.PathLike,
    *,
    depth: int | None = 2,
    on_frames: Callable[[int], None] | None = None,
    **options: Any,
) -> Path:
    """`encode_mp4` on its own thread while the calling thread pulls `video` (the VAE decoding chunk by chunk).

    Decode and encode then overlap instead of alternating. The result is the same file `encode_mp4` writes from
    the same chunks. An error on either side stops both and is raised here.
    """
    return feed_encoder(video, fps, out_path, depth=depth, on_frames=on_frames, **options)()


def feed_encoder(
    video: Iterable[Any],
    fps: float,
    out_path: str | os.PathLike,
    *,
    depth: int | None = 2,
    on_frames: Callable[[int], None] | None = None,
    **options: Any,
) -> Callable[[], Path]:
    """Pull every chunk of `video` into an encoder running on its own thread; returns the wait for that encoder
    (the MP4's path, or the error of either side).

    The chunks are pulled here, not on the encoder thread, because the decode must stay with the caller: it holds
    the engine's lock and torch's inference mode, both per thread. At most `depth` chunks wait between the two
    (bounded memory); `depth=None` lets the decode run ahead of the encoder, so the caller can release the model
    while the encoder finishes (a worker's tail).
    """
    handoff: queue.Queue = queue.Queue(maxsize=0 if depth is None else max(1, depth))
    failed = threading.Event()
    outcome: dict[str, Any] = {}

    def queued() -> Iterator[np.ndarray]:
        while (item := handoff.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item

    def encoder() -> None:
        try:
            outcome["path"] = encode_mp4(queued(), fps, out_path, on_frames=on_frames, **options)
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread, which raises it
            outcome["error"] = exc
            failed.set()
            while True:  # unblock a producer waiting on a full queue
                try:
                    handoff.get_nowait()
                except queue.Empty:
                    break

    def put(item: Any) -> bool:
        while not failed.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    thread = threading.Thread(target=encoder, name="mp4-encoder", daemon=True)
    thread.start()
    chunks = iter(video)
    try:
        for chunk in chunks:
            # To numpy here: the encoder thread then never touches torch.
            if not put(_chunk_frames(chunk)):
                break
        else:
            put(_END)
    except BaseException as exc:
        put(RuntimeError(f"the video source failed: {exc.__class__.__name__}"))  # the encoder removes its file
        thread.join()
        raise
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # stop a lazily decoding generator the encoder no longer reads

    def wait() -> Path:
        thread.join()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["path"]

    return wait


# --------------------------------------------------------------------------- thumbnails


def write_thumbnail(frame: Any, out_path: str | os.PathLike, max_side: int = 512) -> Path:
    """Save an RGB uint8 [h, w, 3] frame as a JPEG whose longest side is <= max_side."""
    arr = _to_numpy(frame)
    if arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 [h, w, 3], got {arr.dtype} {tuple(arr.shape)}")
    img = Image.fromarray(np.ascontiguousarray(arr), "RGB")
    img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)  # only ever shrinks
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(out, ".part.jpg")
    try:
        img.save(tmp, format="JPEG", quality=90)
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return out


def thumbnail_from_mp4(
    mp4_path: str | os.PathLike, out_path: str | os.PathLike, at_fraction: float = 0.3, max_side: int = 512
) -> Path:
    """Decode the frame at ``at_fraction`` of the video's duration and save it as a JPEG."""
    try:
        container = av.open(str(mp4_path))
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"cannot open {mp4_path}: {e}") from e
    with container:
        if not container.streams.video:
            raise MediaError(f"{mp4_path} has no video stream")
        stream = container.streams.video[0]
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        target = max(0.0, min(1.0, float(at_fraction))) * (duration or 0.0)
        if target > 0:
            # Seek lands on the keyframe before target; decode forward from there.
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
        picked = None
        try:
            for frame in container.decode(stream):
                picked = frame
                if frame.time is None or frame.time >= target - 1e-6:
                    break
        except av.error.FFmpegError as e:
            raise MediaError(f"cannot decode {mp4_path}: {e}") from e
        if picked is None:
            raise MediaError(f"{mp4_path} has no decodable video frames")
        rgb = picked.to_ndarray(format="rgb24")
    return write_thumbnail(rgb, out_path, max_side=max_side)


# --------------------------------------------------------------------------- audio input


def read_audio(
    path: str | os.PathLike,
    target_rate: int | None = None,
    channels: int = 2,
    start: float = 0.0,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any file PyAV can open.

    Returns float32 [channels, samples] in [-1, 1] and the sample rate. Mono
    sources are duplicated to stereo when ``channels == 2``.
    """
    if channels not in (1, 2):
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    try:
        container = av.open(str(path))
    except FileNotFoundError as e:
        raise MediaError(f"audio file not found: {path}") from e
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"cannot open {path} as media: {e}") from e

    with container:
        if not container.streams.audio:
            raise MediaError(f"{path} has no audio stream")
        stream = container.streams.audio[0]
        src_channels = stream.codec_context.channels or 0
        rate = int(target_rate or stream.codec_context.sample_rate or 0)
        if rate <= 0:
            raise MediaError(f"{path}: unknown sample rate")
        # Keep mono/stereo as-is (channel duplication is done below at unity gain);
        # let swresample fold surround layouts down.
        layout = {1: "mono", 2: "stereo"}.get(src_channels, "stereo" if channels == 2 else "mono")
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)

        start_sample = round(start * rate)
        limit = None if max_seconds is None else max(0, round(max_seconds * rate))
        seeked = False
        if start > 0:
            try:
                container.seek(int(start * av.time_base), backward=True)
                seeked = True
            except av.error.FFmpegError:
                pass  # unseekable: decode from the beginning and count samples

        parts: list[np.ndarray] = []
        pos: int | None = None if seeked else 0  # sample index of the next decoded sample
        got = 0

        def take(frames) -> bool:
            nonlocal pos, got
            for f in frames:
                data = f.to_ndarray()
                if pos is None:
                    # After a seek the first frame's pts tells where decoding resumed.
                    pos = round(float(f.pts * f.time_base) * rate) if f.pts is not None else 0
                lo = max(0, start_sample - pos)
                pos += data.shape[1]
                if lo >= data.shape[1]:
                    continue
                data = data[:, lo:]
                if limit is not None:
                    data = data[:, : limit - got]
                parts.append(data)
                got += data.shape[1]
                if limit is not None and got >= limit:
                    return True
            return False

        try:
            done = False
            for frame in container.decode(stream):
                if take(resampler.resample(frame)):
                    done = True
                    break
            if not done:
                take(resampler.resample(None))
        except av.error.FFmpegError as e:
            raise MediaError(f"cannot decode audio in {path}: {e}") from e

    if not parts:
        if limit == 0:
            return np.zeros((channels, 0), np.float32), rate
        if start > 0 and pos is not None and pos <= start_sample:
            raise MediaError(f"{path}: start={start}s is past the end of the audio")
        raise MediaError(f"{path}: no decodable audio samples")
    out = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
    if out.shape[0] == 1 and channels == 2:
        out = np.repeat(out, 2, axis=0)
    elif out.shape[0] == 2 and channels == 1:
        out = out.mean(axis=0, keepdims=True)
    return np.ascontiguousarray(out), rate
