"""What a generation job takes: validated by the API (422 on anything wrong), read back by the worker."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ltx2.domain import limits as L
from ltx2.domain.limits import MAX_TEXT_CHARS


class SourceRef(BaseModel):
    """Set by the retake and finalize endpoints: which finished prediction this job is made from."""

    model_config = ConfigDict(extra="forbid")

    prediction: str = Field(max_length=32)
    action: Literal["retake", "finalize"]
    segment: int | None = Field(default=None, ge=1, description="Retake: the segment number (1 = first).")
    text: str | None = Field(default=None, min_length=1, max_length=1000, description="Retake: its new text.")


class GenerateInput(BaseModel):
    """Input of a `generate` prediction. Once queued, `image` and `audio` hold upload ids (POST /v1/files)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS, description="What the avatar says.")
    image: str | None = Field(
        default=None,
        description="The reference photo (frame 0): a file id, its URL on this server, a data: URI, or an http(s) "
        "URL the server fetches (guarded; local hosts need AVATAR_FETCH_ALLOW).",
    )
    image_strength: float = Field(default=1.0, ge=0.0, le=1.0, description="LTX-2 conditioning strength 0–1.")
    keyframe_anchors: int = Field(default=0, ge=0, le=8, description="The photo again at N later keyframes.")
    audio: str | None = Field(
        default=None, description="A voice recording the video follows: given the same ways as `image`."
    )
    avatar_description: str | None = Field(default=None, max_length=1000)
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    width: int = Field(default=L.DEFAULT_WIDTH, ge=L.MIN_SIDE, le=L.MAX_SIDE, multiple_of=L.SIDE_MULTIPLE)
    height: int = Field(default=L.DEFAULT_HEIGHT, ge=L.MIN_SIDE, le=L.MAX_SIDE, multiple_of=L.SIDE_MULTIPLE)
    seconds: float | None = Field(
        default=None, gt=0, description="One clip's length; at most the server's max_seconds (GET /v1/limits)."
    )
    fps: float = Field(default=24.0, ge=1, le=60)
    speed: float = Field(
        default=1.0, ge=L.MIN_SPEED, le=L.MAX_SPEED, description="Playback speed, applied in the one encode."
    )
    mode: Literal["distilled", "two-stage"] = "distilled"
    steps: int | None = Field(default=None, ge=1, le=100)
    profile: str | None = Field(
        default=None,
        description="A trained face profile's name: its LoRA, trigger "
        "word and (unless `image` is given) its best photo are used.",
    )
    profile_strength: float = Field(default=1.0, ge=0.0, le=2.0)
    # Long scripts. A text longer than one clip (or a recording longer than a segment) is split into segments
    # that are generated with continuity and stitched into one video; so is any job asking for captions.
    segment_seconds: float | None = Field(
        default=None,
        ge=L.MIN_SEGMENT_SECONDS,
        le=L.MAX_SEGMENT_SECONDS,
        description="Longest segment (one clip) in seconds of speech; default: the server's setting.",
    )
    captions: list[Literal["srt", "vtt"]] = Field(
        default_factory=list, max_length=2, description="Caption files to write beside the video."
    )
    burn_captions: bool = Field(default=False, description="Draw the captions into the picture.")
    crossfade: float = Field(
        default=0.0, ge=L.MIN_CROSSFADE_S, le=L.MAX_CROSSFADE_S, description="Seconds of crossfade between segments."
    )
    draft: bool = Field(default=False, description="Quick look: distilled at half size; finalize it later.")
    source: SourceRef | None = Field(default=None, description="Set by /retake and /finalize.")

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("text is empty")
        return value


PROFILE_NAME = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,62}[A-Za-z0-9]$|^[A-Za-z0-9]$"


class TrainInput(BaseModel):
    """Input of a `train` job (a face profile). Photos were checked and stored by the API."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PROFILE_NAME, description="Profile name (letters, digits, space, _ . -).")
    photos: list[str] = Field(
        min_length=L.MIN_PHOTOS, max_length=L.MAX_PHOTOS, description="File ids of the checked photos."
    )
    steps: int = Field(default=300, ge=10, le=2000)
    rank: int = Field(default=16, ge=1, le=128)
    alpha: float = Field(default=16.0, gt=0)
    learning_rate: float = Field(default=1e-4, gt=0, le=1e-2)
    resolution: int | None = Field(default=None, ge=64, le=1024, multiple_of=32)
    seed: int = Field(default=0, ge=0, le=2**31 - 1)
    checkpoint_every: int = Field(default=100, ge=1)


def input_file_ids(kind: str, inp: dict) -> list[str]:
    """The upload ids a job's input uses (a generate job's photo and recording, a training's photos)."""
    ids = [inp.get("image"), inp.get("audio")] if kind == "generate" else list(inp.get("photos") or [])
    return list(dict.fromkeys(i for i in ids if isinstance(i, str)))


def trigger_for(name: str) -> str:
    """A rare token the text encoder has not tied to anyone: 'ohwx' plus the name's letters."""
    letters = "".join(ch for ch in name.lower() if ch.isalnum())[:16]
    return f"ohwx{letters}"


PROFILE_PREVIEW = "preview.jpg"  # in a profile's folder: the first frame of a clip made with it when training ended
