"""Segment files and the one final encode that stitches them.

Each finished segment is kept losslessly (RGB H.264 at qp 0 in Matroska, audio as float32 samples), so a
retake can reuse the other segments' exact frames and the MP4 the user gets is the only lossy encode.
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ltx2.domain.captions import Cue, cue_at
from ltx2.media import encode_mp4


@dataclass(frozen=True)
class SegmentFiles:
    """One segment on disk: frames, audio and the last frame (the next segment's frame-0 condition)."""

    folder: Path
    index: int

    @property
    def video(self) -> Path:
        return self.folder / f"seg-{self.index:03d}.mkv"

    @property
    def audio(self) -> Path:
        return self.folder / f"seg-{self.index:03d}.audio.npy"

    @property
    def last_frame(self) -> Path:
        return self.folder / f"seg-{self.index:03d}.last.png"

    def paths(self) -> tuple[Path, Path, Path]:
        return self.video, self.audio, self.last_frame

    def exists(self) -> bool:
        return all(p.is_file() for p in self.paths())


def _numpy(chunk) -> np.ndarray:
    if hasattr(chunk, "detach"):
        chunk = chunk.detach().cpu().numpy()
    arr = np.asarray(chunk)
    return arr[None] if arr.ndim == 3 else arr


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part{path.suffix}")


def write_segment(
    files: SegmentFiles,
    video: Iterable,
    audio: np.ndarray,
    sample_rate: int,
    fps: float,
    *,
    drop_first: bool = False,
    max_frames: int | None = None,
    on_frames: Callable[[int], None] | None = None,
) -> int:
    """Store a generated clip losslessly; returns the frames kept.

    `drop_first`: frame 0 was conditioned on the previous segment's last frame, so it repeats that frame;
    it is dropped together with one frame's worth of audio, and the segments join without a held frame.
    `max_frames`: keep at most this many frames (the clip was rounded up to LTX-2's 8k+1 frame counts).
    `on_frames(n)`: called with the frames written so far.
    """
    files.folder.mkdir(parents=True, exist_ok=True)
    rate = Fraction(fps).limit_denominator(10000)
    tmp_video = _tmp(files.video)
    container = av.open(str(tmp_video), "w", format="matroska")
    stream = None
    kept = 0
    last = None
    start = 1 if drop_first else 0
    stop = None if max_frames is None else start + max_frames
    try:
        # islice stops reading at `stop`, so the VAE does not decode frames that would be thrown away.
        for frame in itertools.islice((f for chunk in video for f in _numpy(chunk)), start, stop):
            if stream is None:
                # libx264rgb at qp 0: lossless RGB, so decoding gives back these exact bytes.
                stream = container.add_stream("libx264rgb", rate=rate, options={"qp": "0", "preset": "ultrafast"})
                stream.width, stream.height, stream.pix_fmt = frame.shape[1], frame.shape[0], "rgb24"
            out = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            out.pts = kept
            container.mux(stream.encode(out))
            kept += 1
            last = frame
            if on_frames is not None:
                on_frames(kept)
        if stream is None:
            raise ValueError("the segment has no frames")
        container.mux(stream.encode(None))
        container.close()
    except BaseException:
        container.close()
        tmp_video.unlink(missing_ok=True)
        raise
    samples = _fit_audio(audio, sample_rate, fps, kept, round(sample_rate / fps) if drop_first else 0)
    tmp_audio = _tmp(files.audio)
    with open(tmp_audio, "wb") as fh:
        np.save(fh, samples)
    tmp_png = _tmp(files.last_frame)
    Image.fromarray(np.ascontiguousarray(last)).save(tmp_png, format="PNG")
    # The video goes last: a segment counts as written once all three exist.
    os.replace(tmp_audio, files.audio)
    os.replace(tmp_png, files.last_frame)
    os.replace(tmp_video, files.video)
    return kept


def _fit_audio(audio: np.ndarray, rate: int, fps: float, frames: int, skip: int) -> np.ndarray:
    """Stereo float32 exactly `frames / fps` long, after dropping `skip` leading samples."""
    a = np.asarray(audio, dtype=np.float32)
    if a.ndim == 1:
        a = a[None]
    if a.shape[0] == 1:
        a = np.repeat(a, 2, axis=0)
    a = a[:2, skip:]
    want = round(frames * rate / fps)
    if a.shape[1] < want:
        a = np.pad(a, ((0, 0), (0, want - a.shape[1])))
    return np.ascontiguousarray(a[:, :want])


def read_frames(path: Path) -> Iterator[np.ndarray]:
    """The segment's frames, uint8 [h, w, 3], in order."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")


def read_audio(files: SegmentFiles) -> np.ndarray:
    return np.load(files.audio)


@dataclass(frozen=True)
class Timeline:
    """Where each segment sits in the stitched video, in frames before the speed change."""

    starts: list[int]
    lengths: list[int]
    crossfade: int

    @property
    def total(self) -> int:
        return self.starts[-1] + self.lengths[-1] if self.starts else 0

    def bounds(self, fps: float, speed: float) -> list[tuple[float, float]]:
        """Each segment's (start, end) in seconds of the final video; a crossfade is split in the middle."""
        scale = 1.0 / (fps * speed)
        half = self.crossfade / 2
        out = []
        for i, (start, length) in enumerate(zip(self.starts, self.lengths)):
            lo = 0 if i == 0 else start + half
            hi = self.total if i == len(self.starts) - 1 else start + length - half
            out.append((lo * scale, hi * scale))
        return out


def timeline(lengths: list[int], crossfade: int) -> Timeline:
    if lengths and crossfade:
        crossfade = min(crossfade, min(lengths) // 2)  # never fade over more than half a segment
    starts, at = [], 0
    for length in lengths:
        starts.append(at)
        at += length - crossfade
    return Timeline(starts, lengths, crossfade if len(lengths) > 1 else 0)


MIN_CAPTION_PX = 6  # the smallest font tried; a 64-pixel draft still gets every word inside the frame


@dataclass(frozen=True)
class CaptionLayout:
    """How one caption is drawn on frames of one size: wrapped to the frame, inside a safe margin."""

    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    text: str  # with line breaks
    stroke: int
    x: float  # the centre of the block
    bottom: float  # where the last line ends (above the player's controls)


def _wrap(words: list[str], fits) -> list[str]:
    """Greedy lines that fit; a single word too wide for a line is cut where it must be."""
    lines: list[str] = []
    for word in words:
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] = f"{lines[-1]} {word}"
            continue
        while not fits(word) and len(word) > 1:
            cut = max(1, next((n for n in range(len(word) - 1, 0, -1) if fits(word[:n])), 1))
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines


def caption_layout(text: str, width: int, height: int) -> CaptionLayout:
    """Font scaled to the frame (about 1/16 of its height), words wrapped to its width inside a margin of 5% at
    the sides, the block ending 10% above the bottom where a player draws its controls. When the text does not
    fit in the lower half at that size the font shrinks, down to MIN_CAPTION_PX, where it may use the frame's
    whole height above a 5% margin."""
    side, edge = max(2, round(width * 0.05)), max(2, round(height * 0.05))
    bottom = height - max(edge, round(height * 0.10))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    words = text.split()
    size = max(MIN_CAPTION_PX, height // 16)
    while True:
        font = ImageFont.load_default(size=size)
        stroke = max(1, size // 14)

        def fits(line: str, font=font, stroke=stroke) -> bool:
            return probe.textlength(line, font=font) + 2 * stroke <= width - 2 * side

        wrapped = "\n".join(_wrap(words, fits))
        left, top, right, _ = probe.multiline_textbbox(
            (width / 2, bottom), wrapped, font=font, anchor="md", align="center", stroke_width=stroke
        )
        room = bottom - (height / 2 if size > MIN_CAPTION_PX else edge)
        if (left >= side and right <= width - side and bottom - top <= room) or size == MIN_CAPTION_PX:
            return CaptionLayout(font, wrapped, stroke, width / 2, bottom)
        size = max(MIN_CAPTION_PX, int(size * 0.85))


def burn_caption(frame: np.ndarray, layout: CaptionLayout) -> np.ndarray:
    img = Image.fromarray(frame)
    ImageDraw.Draw(img).multiline_text(
        (layout.x, layout.bottom),
        layout.text,
        font=layout.font,
        fill=(255, 255, 255),
        anchor="md",
        align="center",
        stroke_width=layout.stroke,
        stroke_fill=(0, 0, 0),
    )
    return np.asarray(img)


def stitch(
    segments: list[SegmentFiles],
    lengths: list[int],
    out_path: Path,
    *,
    fps: float,
    sample_rate: int,
    speed: float = 1.0,
    crossfade_frames: int = 0,
    burn_in: list[Cue] | None = None,
    metadata: dict[str, str] | None = None,
    preset: str = "veryfast",
    on_frames: Callable[[int], None] | None = None,
) -> Timeline:
    """One MP4 from the segment files (`lengths`: their frame counts): frames (and audio) crossfaded at the joins, captions optionally drawn
    in, speed applied once in the encode. Returns where each segment landed."""
    line = timeline(lengths, crossfade_frames)
    audio = _joined_audio([read_audio(s) for s in segments], line, sample_rate, fps)

    def chunks() -> Iterator[np.ndarray]:
        layouts: dict[str, CaptionLayout] = {}
        for j, frame in enumerate(_faded(segments, line)):
            if burn_in:
                cue = cue_at(burn_in, j / (fps * speed))
                if cue is not None:
                    if cue.text not in layouts:
                        layouts[cue.text] = caption_layout(cue.text, frame.shape[1], frame.shape[0])
                    frame = burn_caption(frame, layouts[cue.text])
            yield frame[None]

    encode_mp4(
        chunks(),
        fps,
        out_path,
        audio=audio,
        sample_rate=sample_rate,
        speed=speed,
        metadata=metadata,
        preset=preset,
        on_frames=on_frames,
    )
    return line


def _faded(segments: list[SegmentFiles], line: Timeline) -> Iterator[np.ndarray]:
    """All frames in order; the last `crossfade` frames of a segment are blended into the next one's first."""
    k = line.crossfade
    tail: list[np.ndarray] = []
    for n, seg in enumerate(segments):
        hold_from = line.lengths[n] - k if n < len(segments) - 1 else line.lengths[n]
        new_tail: list[np.ndarray] = []
        for i, frame in enumerate(read_frames(seg.video)):
            if i < len(tail):
                alpha = (i + 1) / (k + 1)
                mixed = tail[i].astype(np.float32) * (1 - alpha) + frame.astype(np.float32) * alpha
                frame = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
            if i >= hold_from:
                new_tail.append(frame)  # yielded blended with the next segment's first frames
            else:
                yield frame
        tail = new_tail


def _joined_audio(parts: list[np.ndarray], line: Timeline, rate: int, fps: float) -> np.ndarray:
    """Segment audio end to end, with a linear crossfade where the frames overlap."""
    overlap = round(line.crossfade * rate / fps)
    total = round(line.total * rate / fps)
    out = np.zeros((2, total), np.float32)
    for start, part in zip(line.starts, parts):
        at = round(start * rate / fps)
        part = part[:, : max(0, total - at)].copy()
        if overlap and at > 0:
            ramp = np.linspace(0.0, 1.0, overlap, endpoint=False, dtype=np.float32)
            n = min(overlap, part.shape[1])
            part[:, :n] *= ramp[:n]
            out[:, at : at + n] *= 1.0 - ramp[:n]
        out[:, at : at + part.shape[1]] += part
    return out
