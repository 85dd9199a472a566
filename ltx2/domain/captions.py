"""SRT and WebVTT captions from segment texts and the segments' real times in the final video.

Each segment becomes one or more cues: its sentences, each given a share of the segment's time in proportion
to its length, and long sentences wrapped onto two lines. Cue boundaries always include the segment
boundaries, so captions and speech change clips together.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from ltx2.domain.split import SENTENCE_SPLIT

LINE_CHARS = 42  # the usual broadcast subtitle line length
MAX_CUE_CHARS = 2 * LINE_CHARS


@dataclass(frozen=True)
class Cue:
    start: float  # seconds in the final video
    end: float
    text: str  # may hold one line break
    segment: int


def _cue_texts(text: str) -> list[str]:
    """Sentences, and sentences longer than two lines cut into two-line pieces at word boundaries."""
    texts: list[str] = []
    for sentence in (s.strip() for s in SENTENCE_SPLIT.split(text) if s.strip()):
        texts.extend(textwrap.wrap(sentence, MAX_CUE_CHARS, break_long_words=False) or [sentence])
    return texts


def build_cues(segments: list[tuple[str, float, float]]) -> list[Cue]:
    """Cues for (text, start, end) segments, times in seconds of the final video."""
    cues: list[Cue] = []
    for index, (text, start, end) in enumerate(segments):
        pieces = _cue_texts(text)
        if not pieces or end <= start:
            continue
        weights = [len(p) for p in pieces]
        total = sum(weights)
        at = start
        for i, (piece, weight) in enumerate(zip(pieces, weights)):
            stop = end if i == len(pieces) - 1 else at + (end - start) * weight / total
            cues.append(Cue(round(at, 3), round(stop, 3), "\n".join(textwrap.wrap(piece, LINE_CHARS)), index))
            at = stop
    return cues


def _stamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(cues: list[Cue]) -> str:
    # A "-->" in the text would read as a forged timing line to lenient players: escaped as for WebVTT.
    blocks = [
        f"{i}\n{_stamp(c.start, ',')} --> {_stamp(c.end, ',')}\n{c.text.replace('-->', '->')}\n"
        for i, c in enumerate(cues, 1)
    ]
    return "\n".join(blocks)


def to_vtt(cues: list[Cue]) -> str:
    # "-->" cannot appear in a WebVTT cue's text.
    blocks = [f"{_stamp(c.start, '.')} --> {_stamp(c.end, '.')}\n{c.text.replace('-->', '->')}\n" for c in cues]
    return "WEBVTT\n\n" + "\n".join(blocks)


def cue_at(cues: list[Cue], seconds: float) -> Cue | None:
    for cue in cues:
        if cue.start <= seconds < cue.end:
            return cue
    return None
