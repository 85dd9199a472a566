"""The one place the server's fixed limits live: inputs, the engine, the encoder, the CLI and /v1/limits read them.

Configurable limits (the longest clip, the segment length, speech rate, script length) are settings
(`ltx2.settings`); their bounds are here.
"""

from __future__ import annotations

# Playback speed, applied inside the one encode (atempo's comfortable range for speech).
MIN_SPEED, MAX_SPEED = 0.5, 2.0
# Frame sides: both LTX-2 stages need a multiple of 64 (stage 1 runs at half size on a 32-pixel latent grid).
SIDE_MULTIPLE, MIN_SIDE, MAX_SIDE = 64, 64, 2048
DEFAULT_WIDTH, DEFAULT_HEIGHT = 768, 512
# The configurable planning numbers when the operator sets nothing (AVATAR_MAX_SECONDS, AVATAR_WORDS_PER_MINUTE,
# AVATAR_SEGMENT_SECONDS, AVATAR_MAX_SCRIPT_SECONDS, AVATAR_MAX_SEGMENTS); /v1/limits publishes the values in force.
DEFAULT_MAX_SECONDS = 20.0
DEFAULT_WORDS_PER_MINUTE = 150.0
DEFAULT_SEGMENT_SECONDS = 15.0
DEFAULT_MAX_SCRIPT_SECONDS = 600.0
DEFAULT_MAX_SEGMENTS = 40


def default_planning() -> dict:
    """The planning numbers of a server with default settings (the shape of GET /v1/limits' planning fields)."""
    return {
        "max_seconds": DEFAULT_MAX_SECONDS,
        "words_per_minute": DEFAULT_WORDS_PER_MINUTE,
        "segment_seconds": DEFAULT_SEGMENT_SECONDS,
        "max_script_seconds": DEFAULT_MAX_SCRIPT_SECONDS,
        "max_segments": DEFAULT_MAX_SEGMENTS,
    }


# A script segment is one clip; it stays under the clip maximum so the continuity frame still fits.
MIN_SEGMENT_SECONDS, MAX_SEGMENT_SECONDS = 2.0, 19.0
MAX_TEXT_CHARS = 5000
MIN_CROSSFADE_S, MAX_CROSSFADE_S = 0.0, 1.0
# Face profiles: photos per training, bytes per photo, the longest side kept from a photo.
MIN_PHOTOS, MAX_PHOTOS = 3, 10
MAX_PHOTO_BYTES = 20 * 2**20
MAX_PHOTO_SIDE = 2048


def side_problem(name: str, value: int) -> str | None:
    """Why `value` cannot be a frame side, or None when it can."""
    if value < MIN_SIDE or value > MAX_SIDE or value % SIDE_MULTIPLE:
        return f"{name} {value} is not possible: use a multiple of {SIDE_MULTIPLE} between {MIN_SIDE} and {MAX_SIDE}"
    return None


def speed_ok(speed: float) -> bool:
    return MIN_SPEED <= speed <= MAX_SPEED  # also False for NaN
