"""Prompt building and clip planning, as a user of the studio sees them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ltx2.domain.prompts import (
    DEFAULT_NEGATIVE_PROMPT,
    ClipPlan,
    EmptyTextError,
    TextTooLongError,
    build_prompt,
    clean_spoken_text,
    estimate_speech_seconds,
    frames_for_seconds,
    plan_clip,
)

LINE = "Hello there, welcome to the studio."


def quoted_line(prompt: str) -> str:
    """The one double-quoted span of a prompt (asserting there is exactly one)."""
    assert prompt.count('"') == 2, prompt
    return prompt.split('"')[1]


def test_spoken_text_is_quoted_exactly_once_as_dialogue():
    prompt = build_prompt(LINE)
    assert quoted_line(prompt) == LINE
    assert prompt.count(LINE) == 1
    assert f'says: "{LINE}"' in prompt


def test_prompt_describes_a_cinematic_talking_head():
    prompt = build_prompt(LINE).lower()
    for word in ("close-up", "camera", "light", "background", "lips"):
        assert word in prompt
    assert "\n" not in prompt


def test_spoken_text_is_cleaned_into_one_quotation():
    messy = '  \u201cIt\u2019s   fine,\u201d she said,\n"really."  '
    prompt = build_prompt(messy)
    line = quoted_line(prompt)
    assert line == "'It's fine,' she said, 'really.'"
    assert clean_spoken_text("\t Hello \n\n world ") == "Hello world"
    # A line pasted with its own quotes is not quoted twice.
    assert quoted_line(build_prompt('"Good morning."')) == "Good morning."


def test_unfinished_line_gets_a_full_stop():
    assert quoted_line(build_prompt("See you soon")) == "See you soon."
    assert quoted_line(build_prompt("Really?")) == "Really?"


def test_avatar_description_names_the_subject():
    prompt = build_prompt(LINE, avatar_description="young woman with auburn hair and a navy blazer")
    assert "a young woman with auburn hair and a navy blazer" in prompt
    assert f'The woman looks into the camera and says: "{LINE}"' in prompt


def test_names_in_descriptions_are_kept_as_written():
    prompt = build_prompt(LINE, avatar_description="Ana Silva, a chemistry teacher")
    assert "shot of Ana Silva, a chemistry teacher," in prompt
    assert "The teacher looks into the camera" in prompt


def test_reference_image_without_description_refers_to_it():
    prompt = build_prompt(LINE, has_reference_image=True)
    assert "the person in the reference image" in prompt
    # A description wins over the generic reference phrase.
    described = build_prompt(LINE, has_reference_image=True, avatar_description="a bearded man")
    assert "reference image" not in described and "a bearded man" in described


def test_neutral_default_subject():
    prompt = build_prompt(LINE)
    assert "reference image" not in prompt
    assert "The person looks into the camera" in prompt


def test_trigger_token_is_in_the_subject_once_and_keeps_its_case():
    prompt = build_prompt(LINE, trigger_token="ohwx person")
    assert "shot of ohwx person" in prompt
    assert prompt.count("ohwx person") == 1
    with_description = build_prompt(LINE, trigger_token="ohwx person", avatar_description="a man in a grey suit")
    assert "ohwx person, a man in a grey suit" in with_description
    # Not added twice when the description already carries it.
    already = build_prompt(LINE, trigger_token="ohwx", avatar_description="ohwx man in a grey suit")
    assert already.count("ohwx") == 1


def test_framing_style_and_voice_are_used():
    prompt = build_prompt(LINE, framing="close-up", style="warm documentary look", voice="deep, calm")
    assert prompt.startswith("A close-up shot of")
    assert "Warm documentary look." in prompt
    assert f'says in a deep, calm voice: "{LINE}"' in prompt


def test_double_quotes_in_other_fields_do_not_break_the_quotation():
    prompt = build_prompt(LINE, avatar_description='a host in a "Studio" t-shirt', style='"retro" look')
    assert quoted_line(prompt) == LINE


def test_blank_text_is_rejected():
    for text in ("", "   ", "\n\t", ' "" ', "..."):
        with pytest.raises(EmptyTextError):
            build_prompt(text)
        with pytest.raises(EmptyTextError):
            plan_clip(text, fps=24, max_seconds=20, words_per_minute=150)


def test_short_greeting_takes_a_few_seconds():
    seconds = estimate_speech_seconds(LINE)
    assert 2.0 <= seconds <= 4.0
    assert estimate_speech_seconds("") == 0.0


def test_estimate_grows_with_words_and_pauses_and_slows_with_rate():
    assert estimate_speech_seconds("one two three four") < estimate_speech_seconds("one two three four five six")
    assert estimate_speech_seconds("Yes. No. Maybe.") > estimate_speech_seconds("yes no maybe")
    assert estimate_speech_seconds(LINE, words_per_minute=100) > estimate_speech_seconds(LINE, words_per_minute=200)
    # Numbers are read as several words; decimals add no sentence pause.
    assert estimate_speech_seconds("It costs 1250 dollars") > estimate_speech_seconds("It costs 12 dollars")
    assert estimate_speech_seconds("Version 3.5 works") < estimate_speech_seconds("Version 3. 5 works")


@pytest.mark.parametrize("seconds", [0.0, 0.1, 0.37, 1.0, 2.9, 5.0, 5.04, 10.0, 19.99, 20.0])
@pytest.mark.parametrize("fps", [24.0, 25.0, 30.0, 23.976])
def test_frame_counts_are_8k_plus_1_and_just_cover_the_duration(seconds, fps):
    frames = frames_for_seconds(seconds, fps)
    assert frames % 8 == 1 and frames >= 9
    assert frames / fps >= seconds - 1e-6
    # Smallest such count: one step fewer would be too short (or below the minimum).
    assert frames == 9 or (frames - 8) / fps < seconds


def test_known_frame_counts():
    assert frames_for_seconds(5.0, 24) == 121
    assert frames_for_seconds(1.0, 24) == 25
    assert frames_for_seconds(0, 24) == 9
    with pytest.raises(ValueError):
        frames_for_seconds(1.0, 0)


def test_plan_covers_the_estimated_speech():
    plan = plan_clip(LINE, fps=24, max_seconds=20, words_per_minute=150)
    assert isinstance(plan, ClipPlan)
    assert plan.seconds == pytest.approx(estimate_speech_seconds(LINE))
    assert plan.num_frames % 8 == 1
    assert plan.clip_seconds >= plan.seconds
    assert plan.clip_seconds - plan.seconds < 8 / 24


def test_plan_respects_minimum_duration():
    plan = plan_clip("Hi.", fps=24, max_seconds=20, words_per_minute=150, min_seconds=2.0)
    assert plan.seconds == 2.0
    assert plan.num_frames == 49
    assert plan.speech_seconds < 2.0


def test_too_long_text_raises_with_numbers_and_hint():
    text = " ".join(["word"] * 80) + "."  # ~32 s at 150 wpm
    with pytest.raises(TextTooLongError) as info:
        plan_clip(text, fps=24, max_seconds=20, words_per_minute=150)
    message = str(info.value)
    assert "20 s" in message and "32." in message
    assert "script" in message and "split" in message
    assert info.value.estimated_seconds > info.value.max_seconds == 20
    assert isinstance(info.value, ValueError)
    # The same text fits a longer clip.
    assert plan_clip(text, fps=24, max_seconds=40, words_per_minute=150).num_frames % 8 == 1


def test_negative_prompt_targets_talking_head_failures():
    text = DEFAULT_NEGATIVE_PROMPT.lower()
    for failure in ("lip", "blurry", "robotic", "background music", "watermark"):
        assert failure in text


def test_module_does_not_import_torch():
    code = "import sys, ltx2.domain.prompts; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
