"""Split a script into segments that each fit one LTX-2 clip.

Pure Python (no torch, no numpy): the API checks a script and shows its plan before any worker sees it.

Rules, in order:
1. A blank line is an explicit break: segments never span one.
2. Inside a paragraph, whole sentences are packed greedily while the speech estimate of the segment stays
   within the maximum clip length.
3. A sentence longer than a clip is cut at clause breaks (, ; : dashes), and a clause longer than a clip at
   word boundaries, so a 5,000-character sentence without punctuation still becomes sensible pieces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ltx2.domain.prompts import EmptyTextError, clean_spoken_text, estimate_speech_seconds, frames_for_seconds

_PARAGRAPH = re.compile(r"\n[ \t]*\n+")
# After sentence punctuation (optionally a closing quote or bracket) and before whitespace.
SENTENCE_SPLIT = re.compile(r"(?<=[.!?\u2026])[\"'\u201d\u2019)\]]*\s+")
_CLAUSE_SPLIT = re.compile(r"(?<=[,;:])\s+|\s+(?=[-\u2013\u2014]+\s)")


class ScriptTooLongError(ValueError):
    """The script's estimated speech exceeds the configured maximum, or needs too many segments."""


@dataclass(frozen=True)
class Segment:
    index: int
    text: str
    speech_seconds: float  # the speech estimate for `text`
    paragraph: int  # which blank-line-separated paragraph it came from

    def num_frames(self, fps: float, min_seconds: float = 1.0) -> int:
        return frames_for_seconds(max(self.speech_seconds, min_seconds), fps)


@dataclass(frozen=True)
class ScriptPlan:
    segments: list[Segment]
    speech_seconds: float
    max_clip_seconds: float

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.segments]


def _seconds(text: str, wpm: float) -> float:
    return estimate_speech_seconds(text, wpm)


def _pieces(text: str, pattern: re.Pattern) -> list[str]:
    return [p.strip() for p in pattern.split(text) if p and p.strip()]


def _word_chunks(text: str, max_seconds: float, wpm: float) -> list[str]:
    """Cut at word boundaries into chunks that each fit (the last resort for a run-on clause), as even in length
    as possible so no chunk is a stray word or two."""
    words = text.split()
    greedy: list[list[str]] = []
    for word in words:
        if greedy and _seconds(" ".join([*greedy[-1], word]), wpm) <= max_seconds:
            greedy[-1].append(word)
        else:
            greedy.append([word])
    count = len(greedy)
    size = -(-len(words) // count)
    even = [" ".join(words[i : i + size]) for i in range(0, len(words), size)]
    if len(even) == count and all(_seconds(c, wpm) <= max_seconds for c in even):
        return even
    return [" ".join(chunk) for chunk in greedy]


def _units(sentence: str, max_seconds: float, wpm: float) -> list[str]:
    """A sentence as pieces that each fit one clip: itself, else its clauses, else word chunks."""
    if _seconds(sentence, wpm) <= max_seconds:
        return [sentence]
    units: list[str] = []
    for clause in _pieces(sentence, _CLAUSE_SPLIT):
        if _seconds(clause, wpm) <= max_seconds:
            units.append(clause)
        else:
            units.extend(_word_chunks(clause, max_seconds, wpm))
    # Pack clauses back together where they fit, so a long sentence is cut as few times as needed.
    return _pack(units, max_seconds, wpm)


def _pack(units: list[str], max_seconds: float, wpm: float) -> list[str]:
    packed: list[str] = []
    for unit in units:
        if packed and _seconds(f"{packed[-1]} {unit}", wpm) <= max_seconds:
            packed[-1] = f"{packed[-1]} {unit}"
        else:
            packed.append(unit)
    return packed


def split_script(
    text: str,
    *,
    max_clip_seconds: float,
    words_per_minute: float,
    max_script_seconds: float | None = None,
    max_segments: int | None = None,
) -> ScriptPlan:
    """Segments of `text`, each estimated to fit `max_clip_seconds` of speech.

    Raises EmptyTextError for a script with nothing to say and ScriptTooLongError when the whole script is
    over `max_script_seconds` of speech or would need more than `max_segments` clips.
    """
    if max_clip_seconds <= 0:
        raise ValueError("max_clip_seconds must be positive")
    total = _seconds(text or "", words_per_minute)
    if total <= 0:
        raise EmptyTextError("There is no text to speak: enter the line the avatar should say.")
    if max_script_seconds is not None and total > max_script_seconds:
        raise ScriptTooLongError(
            f"The script is about {total:.0f} s of speech at {words_per_minute:g} words per minute; this server "
            f"takes scripts of at most {max_script_seconds:g} s. Split it into several jobs."
        )
    segments: list[Segment] = []
    paragraphs = [p for p in _PARAGRAPH.split(text) if p.strip()]
    for number, paragraph in enumerate(paragraphs):
        sentences = _pieces(clean_spoken_text(paragraph), SENTENCE_SPLIT)
        units = [u for s in sentences for u in _units(s, max_clip_seconds, words_per_minute)]
        for piece in _pack(units, max_clip_seconds, words_per_minute):
            seconds = _seconds(piece, words_per_minute)
            if seconds <= 0:  # punctuation only ("..."): nothing to say
                continue
            segments.append(Segment(len(segments), piece, seconds, number))
    if not segments:
        raise EmptyTextError("There is no text to speak: enter the line the avatar should say.")
    if max_segments is not None and len(segments) > max_segments:
        raise ScriptTooLongError(
            f"The script needs {len(segments)} clips of at most {max_clip_seconds:g} s; this server takes at most "
            f"{max_segments}. Shorten it or raise the clip length."
        )
    return ScriptPlan(segments, total, max_clip_seconds)
