"""Read back what an encoded file actually contains (streams, timing, metadata)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import av
import numpy as np

from .encode import MediaError

__all__ = ["MediaInfo", "probe", "decode_frames"]


@dataclass
class MediaInfo:
    has_video: bool = False
    has_audio: bool = False
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    frames: int | None = None
    duration: float | None = None  # container duration (max over streams)
    video_duration: float | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    audio_rate: int | None = None
    audio_channels: int | None = None
    audio_duration: float | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def _open(path: str | os.PathLike):
    try:
        return av.open(str(path))
    except FileNotFoundError as e:
        raise MediaError(f"file not found: {path}") from e
    except (av.error.FFmpegError, OSError) as e:
        raise MediaError(f"cannot open {path} as media: {e}") from e


def _stream_seconds(stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def probe(path: str | os.PathLike) -> MediaInfo:
    """Describe the first video and first audio stream of ``path``."""
    info = MediaInfo()
    with _open(path) as container:
        info.metadata = dict(container.metadata)
        v = container.streams.video[0] if container.streams.video else None
        a = container.streams.audio[0] if container.streams.audio else None

        if v is not None:
            info.has_video = True
            cc = v.codec_context
            info.width, info.height = cc.width, cc.height
            info.video_codec = cc.name
            rate = v.average_rate or v.guessed_rate or v.base_rate
            info.fps = float(rate) if rate else None
            info.video_duration = _stream_seconds(v)
            info.frames = v.frames or None

        if a is not None:
            info.has_audio = True
            cc = a.codec_context
            info.audio_codec = cc.name
            info.audio_rate = cc.sample_rate
            info.audio_channels = cc.channels
            info.audio_duration = _stream_seconds(a)

        if container.duration is not None:
            info.duration = container.duration / av.time_base

        need_frames = v is not None and not info.frames
        need_audio = a is not None and info.audio_duration is None
        if need_frames or need_audio:
            # Containers such as raw streams or some webm files carry no counts:
            # decode to count rather than guess.
            streams = [s for s, need in ((v, need_frames), (a, need_audio)) if need]
            n_frames, n_samples = 0, 0
            try:
                for frame in container.decode(*streams):
                    if isinstance(frame, av.VideoFrame):
                        n_frames += 1
                    else:
                        n_samples += frame.samples
            except av.error.FFmpegError as e:
                raise MediaError(f"cannot decode {path}: {e}") from e
            if need_frames:
                info.frames = n_frames
                if info.video_duration is None and info.fps:
                    info.video_duration = n_frames / info.fps
            if need_audio and info.audio_rate:
                info.audio_duration = n_samples / info.audio_rate

    if info.duration is None:
        known = [d for d in (info.video_duration, info.audio_duration) if d is not None]
        info.duration = max(known) if known else None
    return info


def decode_frames(path: str | os.PathLike) -> np.ndarray:
    """All video frames of ``path`` as uint8 [f, h, w, 3] RGB (meant for tests)."""
    with _open(path) as container:
        if not container.streams.video:
            raise MediaError(f"{path} has no video stream")
        try:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        except av.error.FFmpegError as e:
            raise MediaError(f"cannot decode {path}: {e}") from e
    if not frames:
        raise MediaError(f"{path} has no decodable video frames")
    return np.stack(frames)
