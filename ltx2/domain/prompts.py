"""Talking-head prompts for LTX-2: speech-length estimates, valid frame counts and the prompt text itself.

Pure Python on purpose (no torch): the API and CLI validate a request and show its plan before any model
is loaded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

# Speech-rate model. 150 words a minute is a calm presenter pace (conversational English runs ~140-170).
DEFAULT_WORDS_PER_MINUTE = 150.0
# Typical pauses a speaker leaves at a sentence end (. ! ? …) and at a clause break (, ; : dash). They are
# rough averages from read speech; they matter for short lines, where they are a large share of the time.
SENTENCE_PAUSE_SECONDS = 0.35
CLAUSE_PAUSE_SECONDS = 0.15

# LTX-2 needs 8k+1 frames (the video VAE compresses time 8x and keeps the first frame on its own).
FRAME_MULTIPLE = 8
MIN_FRAMES = 9

DEFAULT_FRAMING = "medium close-up"
DEFAULT_SUBJECT = "a person with a calm, friendly expression"
REFERENCE_SUBJECT = "the person in the reference image"

DEFAULT_NEGATIVE_PROMPT = (
    "blurry face, out of focus, soft or smeared facial details, warped or melting face, asymmetric eyes, "
    "extra teeth, deformed mouth, mouth not moving, frozen face, lips out of sync with the speech, "
    "mumbling, slurred words, wrong words, extra words, repeated words, robotic or metallic voice, "
    "muffled audio, echo, reverb, background music, crowd noise, hiss, clipping, silence, "
    "jerky or jittery head motion, unnatural blinking, staring without blinking, face drifting out of frame, "
    "camera shake, sudden zoom, cuts, scene change, flicker, strobing light, harsh shadows on the face, "
    "overexposed, underexposed, washed-out colors, oversaturated, cartoon, 3D render, CGI look, "
    "uncanny valley, extra people, extra limbs, distorted hands, text, subtitles, watermark, logo, "
    "low resolution, compression artifacts."
)

# Characters normalised before the line goes inside the prompt's one pair of double quotes.
_DOUBLE_QUOTES = str.maketrans(
    {c: '"' for c in "\u201c\u201d\u201e\u201f\u2033\u2036\uff02"}
    | {c: "'" for c in "\u2018\u2019\u201a\u201b\u2032\u2035\u00ab\u00bb\u2039\u203a"}
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_WORD = re.compile(r"[^\W_]+(?:['\u2019][^\W_]+)*", re.UNICODE)
_DIGITS = re.compile(r"^\d+$")
# Punctuation counts as a pause only before a space or the end, so "3.5" and "1,000" add none.
_SENTENCE_END = re.compile(r"[.!?\u2026]+(?=\s|$)")
_CLAUSE_BREAK = re.compile(r"[,;:](?=\s|$)|\s[-\u2013\u2014]+\s|\u2014")

# Nouns a description is likely to name its subject with; the first one found becomes "the <noun>".
_SUBJECT_NOUNS = (
    "woman",
    "man",
    "girl",
    "boy",
    "lady",
    "gentleman",
    "person",
    "child",
    "kid",
    "teenager",
    "presenter",
    "host",
    "anchor",
    "narrator",
    "teacher",
    "doctor",
    "nurse",
    "chef",
    "scientist",
    "professor",
    "student",
    "businessman",
    "businesswoman",
    "grandmother",
    "grandfather",
    "grandma",
    "grandpa",
    "actor",
    "actress",
    "singer",
    "athlete",
    "soldier",
    "robot",
    "android",
    "character",
    "avatar",
    "speaker",
    "guy",
)
_DETERMINERS = {"a", "an", "the", "this", "that", "my", "our", "your", "his", "her", "their", "one"}
# Capitalised first words that still start a plain description ("Young woman ..."), not a name.
_DESCRIPTIVE_OPENERS = {
    "young",
    "old",
    "older",
    "elderly",
    "middle-aged",
    "smiling",
    "friendly",
    "professional",
    "tall",
    "short",
    "blonde",
    "blond",
    "bald",
    "bearded",
    "happy",
    "serious",
    "female",
    "male",
    "cheerful",
    "confident",
    "beautiful",
    "handsome",
    "slim",
    "athletic",
    "red-haired",
    "dark-haired",
    "brunette",
    "senior",
    "cute",
}


class EmptyTextError(ValueError):
    """The text to speak is blank (or only punctuation)."""


class TextTooLongError(ValueError):
    """The estimated speech does not fit in one clip."""

    def __init__(self, message: str, *, estimated_seconds: float, max_seconds: float):
        super().__init__(message)
        self.estimated_seconds = estimated_seconds
        self.max_seconds = max_seconds


@dataclass(frozen=True)
class ClipPlan:
    seconds: float  # the duration the clip must cover: estimated speech, at least min_seconds
    num_frames: int  # 8k+1 frames covering `seconds`
    fps: float = 24.0
    speech_seconds: float = 0.0  # the raw speech estimate, before min_seconds

    @property
    def clip_seconds(self) -> float:
        """Length of the generated video (slightly more than `seconds`: frame counts come in steps of 8)."""
        return self.num_frames / self.fps


def _count_words(text: str) -> float:
    words = 0.0
    for token in _WORD.findall(text):
        if _DIGITS.match(token):
            # Numbers are read out as several words ("2026" -> "twenty twenty-six"); ~1 word per 2 digits.
            words += max(1, math.ceil(len(token) / 2))
        else:
            words += 1
    return words


def estimate_speech_seconds(text: str, words_per_minute: float = DEFAULT_WORDS_PER_MINUTE) -> float:
    """Seconds a speaker needs for `text`: words at `words_per_minute`, plus sentence and clause pauses."""
    if words_per_minute <= 0:
        raise ValueError("words_per_minute must be positive")
    text = clean_spoken_text(text)
    words = _count_words(text)
    if words == 0:
        return 0.0
    sentences = len(_SENTENCE_END.findall(text))
    clauses = len(_CLAUSE_BREAK.findall(text))
    return words * 60.0 / words_per_minute + sentences * SENTENCE_PAUSE_SECONDS + clauses * CLAUSE_PAUSE_SECONDS


def frames_for_seconds(seconds: float, fps: float) -> int:
    """The smallest LTX-valid frame count (8k+1, at least 9) whose duration frames/fps covers `seconds`."""
    if fps <= 0:
        raise ValueError("fps must be positive")
    if seconds < 0 or math.isnan(seconds):
        raise ValueError("seconds must be zero or more")
    # The tiny epsilon keeps float noise (e.g. 2.0 * 24.0000001) from adding a whole 8-frame step.
    needed = max(MIN_FRAMES, math.ceil(seconds * fps - 1e-6))
    steps = math.ceil((needed - 1) / FRAME_MULTIPLE)
    return steps * FRAME_MULTIPLE + 1


def tidy_fragment(text: str | None) -> str:
    """Whitespace-collapsed, double-quote-free text for the descriptive parts of the prompt."""
    if not text:
        return ""
    text = _CONTROL.sub(" ", text.translate(_DOUBLE_QUOTES)).replace('"', "'")
    return " ".join(text.split()).strip(" ,;")


def clean_spoken_text(text: str) -> str:
    """The line as it will be quoted: one line, straight quotes, no inner double quotes."""
    text = _CONTROL.sub(" ", (text or "").translate(_DOUBLE_QUOTES))
    text = " ".join(text.split())
    # A line pasted with its own surrounding quotes would otherwise end up double-quoted.
    while len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'" and text.count(text[0]) == 2:
        text = text[1:-1].strip()
    # The prompt quotes the line in double quotes; inner ones become single quotes so it stays one quotation.
    return text.replace('"', "'")


def _with_article(description: str) -> str:
    """'young woman ...' -> 'a young woman ...'; names ('Ana Silva, a teacher') are left as written."""
    first = description.split(" ", 1)[0]
    word = first.lower().strip(",.;:")
    if word in _DETERMINERS:
        return description[0].lower() + description[1:]
    if first[:1].isupper():
        if not (word in _DESCRIPTIVE_OPENERS or word in _SUBJECT_NOUNS or word.endswith("-year-old")):
            return description
        description = description[0].lower() + description[1:]
    article = "an" if word[:1] in "aeiou" else "a"
    return f"{article} {description}"


def _short_reference(description: str) -> str:
    """How later sentences refer to the subject: "the woman" from "a young woman with red hair"."""
    lowered = description.lower()
    best: tuple[int, str] | None = None
    for noun in _SUBJECT_NOUNS:
        match = re.search(rf"\b{noun}\b", lowered)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), noun)
    return f"the {best[1]}" if best else "the person"


def _voice_phrase(voice: str | None) -> str:
    voice = tidy_fragment(voice).rstrip(".")
    if not voice:
        return ""
    if voice.split(" ", 1)[0].lower() not in _DETERMINERS:
        voice = ("an " if voice[0].lower() in "aeiou" else "a ") + voice
    if "voice" not in voice.lower():
        voice += " voice"
    return f" in {voice}"


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."


def build_prompt(
    spoken_text: str,
    *,
    avatar_description: str | None = None,
    has_reference_image: bool = False,
    framing: str = DEFAULT_FRAMING,
    style: str | None = None,
    voice: str | None = None,
    trigger_token: str | None = None,
) -> str:
    """A cinematic, present-tense LTX-2 prompt in which the subject says `spoken_text`, quoted once.

    LTX-2 voices dialogue written as `<subject> says: "<line>"`, and follows prompts that describe subject,
    framing, action, lighting, background and camera as one flowing paragraph.
    """
    line = clean_spoken_text(spoken_text)
    if not _count_words(line):
        raise EmptyTextError("There is no text to speak: enter the line the avatar should say.")
    if line[-1].isalnum():
        line += "."  # LTX-2 ends speech more cleanly on a finished sentence

    description = tidy_fragment(avatar_description).rstrip(".")
    trigger = tidy_fragment(trigger_token)
    framing = tidy_fragment(framing) or DEFAULT_FRAMING

    if description:
        subject = _with_article(description)
        reference = _short_reference(description)
    elif has_reference_image:
        subject = REFERENCE_SUBJECT
        reference = "the person"
    else:
        subject = DEFAULT_SUBJECT if not trigger else ""
        reference = "the person"
    if trigger and trigger.lower() not in subject.lower():
        # A trained face profile answers to its token; it names the subject, the description refines it.
        subject = f"{trigger}, {subject}" if subject else trigger
    # Later sentences never start with the trigger itself: capitalising it would change the token.

    parts = [
        f"A {framing} shot of {subject}, facing the camera against a softly blurred, neutral background.",
        f'{reference.capitalize()} looks into the camera and says{_voice_phrase(voice)}: "{line}"',
        f"{reference.capitalize()} speaks naturally, lips moving in sync with every word, with subtle head "
        "movements, relaxed shoulders and occasional blinks.",
        "Soft, even key light with a gentle fill lights the face clearly.",
        "The camera stays still at eye level with a shallow depth of field.",
    ]
    if style:
        parts.append(_sentence(tidy_fragment(style)))
    parts.append("The audio is clear, close-miked speech in a quiet room, with no music.")
    return " ".join(p for p in parts if p)


def plan_clip(
    text: str,
    *,
    fps: float,
    max_seconds: float,
    words_per_minute: float = DEFAULT_WORDS_PER_MINUTE,
    min_seconds: float = 1.0,
) -> ClipPlan:
    """Duration and frame count for one clip speaking `text`, or a clear error when it cannot be one clip."""
    speech = estimate_speech_seconds(text, words_per_minute)
    if speech <= 0:
        raise EmptyTextError("There is no text to speak: enter the line the avatar should say.")
    if speech > max_seconds:
        # Inverse of the estimate without pauses: an upper bound on the words that fit.
        fit_words = int(max_seconds * words_per_minute / 60.0)
        raise TextTooLongError(
            f"The text is too long for one clip: about {speech:.1f} s of speech at {words_per_minute:g} words "
            f"per minute, but one clip can be at most {max_seconds:g} s (roughly {fit_words} words). Shorten "
            "it, or send it as a script: longer texts are split into several clips and stitched into one video.",
            estimated_seconds=speech,
            max_seconds=max_seconds,
        )
    seconds = max(speech, min_seconds)
    return ClipPlan(seconds=seconds, num_frames=frames_for_seconds(seconds, fps), fps=fps, speech_seconds=speech)
