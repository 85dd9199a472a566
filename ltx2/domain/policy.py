"""Which jobs are scripts (several segments, stitched) and which are one clip. Pure Python, for the API too."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ltx2.domain.prompts import estimate_speech_seconds

if TYPE_CHECKING:
    from ltx2.domain.inputs import GenerateInput
    from ltx2.settings import Settings


def draft_size(width: int, height: int) -> tuple[int, int]:
    """A draft's size: half, on the 64-pixel grid the pipelines need (at least 64)."""
    return max(64, width // 2 // 64 * 64), max(64, height // 2 // 64 * 64)


def segment_seconds(inp: GenerateInput, settings: Settings) -> float:
    return inp.segment_seconds or settings.segment_seconds


def is_script(inp: GenerateInput, settings: Settings, audio_seconds: float | None = None) -> bool:
    """A job is a script when it asks for script features or does not fit one clip.

    What fits one clip (up to max_seconds) stays one clip, as before scripts existed, unless the request sets
    its own segment length; longer texts and recordings are split at segment_seconds.
    """
    if inp.source is not None or inp.captions or inp.burn_captions or inp.crossfade:
        return True
    if inp.seconds is not None or (inp.audio is not None and audio_seconds is None):
        return False
    return longer_than_a_clip(
        inp.text,
        settings,
        segment_seconds=inp.segment_seconds,
        audio_seconds=audio_seconds if inp.audio is not None else None,
    )


def longer_than_a_clip(
    text: str, settings: Settings, *, segment_seconds: float | None = None, audio_seconds: float | None = None
) -> bool:
    """The recording (if any) or the text's speech estimate is longer than one clip (or the segment length asked
    for): such a job is made as a script."""
    limit = segment_seconds or settings.max_seconds
    if audio_seconds is not None:
        return audio_seconds > limit
    return estimate_speech_seconds(text, settings.words_per_minute) > limit
