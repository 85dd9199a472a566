"""Long scripts without the engine: splitting, captions, cuts in a recording, lossless segments, the stitch."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from ltx2.domain.captions import build_cues, to_srt, to_vtt
from ltx2.domain.prompts import EmptyTextError, estimate_speech_seconds
from ltx2.domain.split import ScriptTooLongError, split_script
from ltx2.media import probe
from ltx2.script.stitch import SegmentFiles, read_frames, stitch, timeline, write_segment
from ltx2.script.voice import cut_points

WPM = 150.0
FIVE = (
    "Welcome to the studio, where your words become a video. Today I will show you how a long script "
    "turns into one clip. Every sentence is kept whole whenever it fits. The face stays the same from the "
    "first word to the last. Thanks for watching, and see you next time!"
)


def words(text: str) -> list[str]:
    return text.split()


def test_five_sentences_become_segments_that_each_fit_one_clip_and_keep_every_word():
    plan = split_script(FIVE, max_clip_seconds=6.0, words_per_minute=WPM)
    assert len(plan.segments) >= 3
    assert [s.index for s in plan.segments] == list(range(len(plan.segments)))
    for seg in plan.segments:
        assert 0 < estimate_speech_seconds(seg.text, WPM) <= 6.0
    assert words(" ".join(plan.texts)) == words(FIVE)
    # Whole sentences where they fit: every segment ends at a sentence end.
    assert all(t.rstrip()[-1] in ".!?" for t in plan.texts)


def test_blank_lines_are_breaks_that_no_segment_spans():
    text = "First paragraph, short.\n\nSecond paragraph.\n  \nThird."
    plan = split_script(text, max_clip_seconds=19.0, words_per_minute=WPM)
    assert plan.texts == ["First paragraph, short.", "Second paragraph.", "Third."]
    assert [s.paragraph for s in plan.segments] == [0, 1, 2]


def test_a_5000_character_sentence_without_breaks_is_cut_at_words_into_clips():
    text = " ".join(["lorem"] * 833)[:5000]  # one run-on "sentence", no punctuation at all
    assert len(text) == 4997
    plan = split_script(text, max_clip_seconds=15.0, words_per_minute=WPM)
    assert len(plan.segments) == pytest.approx(833 / (15.0 * WPM / 60), abs=1)
    assert all(estimate_speech_seconds(t, WPM) <= 15.0 for t in plan.texts)
    assert words(" ".join(plan.texts)) == words(text)


def test_a_long_sentence_is_cut_at_clauses_before_words():
    sentence = (
        "When the light came up over the hills, the village woke, the bakers lit their ovens, the "
        "children ran to the river, and the old men sat on the bench to watch the day begin."
    )
    plan = split_script(sentence, max_clip_seconds=6.0, words_per_minute=WPM)
    assert len(plan.segments) > 1
    assert all(t.endswith((",", ".")) for t in plan.texts)  # cut after commas, never mid-clause
    # A clause longer than a clip is cut at words into even pieces, not a full piece and a stray word.
    pieces = split_script(sentence, max_clip_seconds=5.0, words_per_minute=WPM).texts
    assert min(len(p.split()) for p in pieces) >= 4


def test_empty_and_over_the_maximum_scripts_are_refused_clearly():
    for text in ("", "   \n\n  ", "... !!"):
        with pytest.raises(EmptyTextError):
            split_script(text, max_clip_seconds=15.0, words_per_minute=WPM)
    with pytest.raises(ScriptTooLongError, match=r"at most 60 s"):
        split_script(" ".join(["word"] * 200), max_clip_seconds=15.0, words_per_minute=WPM, max_script_seconds=60)
    with pytest.raises(ScriptTooLongError, match=r"needs \d+ clips"):
        split_script(FIVE, max_clip_seconds=3.0, words_per_minute=WPM, max_segments=2)


def _parse_srt(text: str) -> list[tuple[float, float, str]]:
    def sec(stamp: str) -> float:
        h, m, rest = stamp.split(":")
        s, ms = rest.split(",")
        return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000

    cues = []
    for block in text.strip().split("\n\n"):
        lines = block.splitlines()
        start, end = lines[1].split(" --> ")
        cues.append((sec(start), sec(end), "\n".join(lines[2:])))
    return cues


def test_caption_cues_are_ordered_non_overlapping_and_change_with_the_segments():
    segments = [
        ("Hello there. This is the first clip.", 0.0, 4.0),
        (
            "A second clip with one sentence that is quite a bit longer than two lines of subtitles can "
            "hold on a screen.",
            4.0,
            11.5,
        ),
        ("Bye!", 11.5, 12.25),
    ]
    srt = _parse_srt(to_srt(build_cues(segments)))
    starts = [c[0] for c in srt]
    assert starts == sorted(starts)
    assert all(a[1] <= b[0] + 1e-9 for a, b in zip(srt, srt[1:]))  # no overlap
    assert all(c[1] > c[0] for c in srt)
    boundaries = {round(c[0], 3) for c in srt} | {round(srt[-1][1], 3)}
    assert {0.0, 4.0, 11.5, 12.25} <= boundaries
    assert all(len(line) <= 42 for c in srt for line in c[2].splitlines())
    vtt = to_vtt(build_cues(segments))
    assert vtt.startswith("WEBVTT\n\n") and "00:00:04.000 --> " in vtt
    assert re.search(r"00:00:11\.500 --> 00:00:12\.250\nBye!", vtt)


def _speech_with_pauses(rate: int, pieces: list[float], pause: float) -> tuple[np.ndarray, list[float]]:
    """Noise bursts (speech stand-ins) separated by silences; returns samples and the silences' centres."""
    rng = np.random.default_rng(0)
    parts, centres, t = [], [], 0.0
    for i, seconds in enumerate(pieces):
        parts.append(0.3 * rng.standard_normal(int(seconds * rate)).astype(np.float32))
        t += seconds
        if i < len(pieces) - 1:
            parts.append(np.zeros(int(pause * rate), np.float32))
            centres.append(t + pause / 2)
            t += pause
    return np.concatenate(parts)[None], centres


def test_a_recording_is_cut_in_the_pauses_nearest_the_text_boundaries():
    rate = 16000
    samples, pauses = _speech_with_pauses(rate, [3.0, 4.1, 2.7], pause=0.4)
    # The text's estimate puts the boundaries a little off the real pauses.
    cuts = cut_points(samples, rate, [3.3, 3.9, 2.8], max_seconds=6.0)
    assert len(cuts) == 4 and cuts[0] == 0 and cuts[-1] == pytest.approx(samples.shape[1] / rate)
    for cut, pause in zip(cuts[1:-1], pauses):
        assert abs(cut - pause) < 0.2  # inside the 0.4 s pause
    # A recording longer than the clips allow gets more pieces, none over the limit.
    long, _ = _speech_with_pauses(rate, [5.0] * 6, pause=0.3)
    cuts = cut_points(long, rate, [1.0, 1.0], max_seconds=8.0)
    assert all(b - a <= 8.0 + 1e-6 for a, b in zip(cuts, cuts[1:])) and len(cuts) - 1 == 4  # 31.5 s


def _frames(n: int, seed: int, h: int = 32, w: int = 48) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _digest(frames) -> list[str]:
    return [hashlib.sha256(f.tobytes()).hexdigest() for f in frames]


def test_segments_are_stored_losslessly_and_the_continuity_frame_is_dropped(tmp_path):
    rate, fps = 16000, 24.0
    frames = _frames(17, 1)
    audio = np.random.default_rng(2).uniform(-0.5, 0.5, (2, round(17 * rate / fps))).astype(np.float32)
    files = SegmentFiles(tmp_path, 0)
    kept = write_segment(files, [frames[:9], frames[9:]], audio, rate, fps, drop_first=True)
    assert kept == 16 and files.exists()
    assert _digest(read_frames(files.video)) == _digest(frames[1:])
    stored = np.load(files.audio)
    assert stored.shape == (2, round(16 * rate / fps))
    rest = audio[:, round(rate / fps) :]  # one frame's worth of audio went with the dropped frame
    assert abs(rest.shape[1] - stored.shape[1]) <= 1  # sample rounding; a missing sample is silence
    n = min(rest.shape[1], stored.shape[1])
    np.testing.assert_array_equal(stored[:, :n], rest[:, :n])
    capped = write_segment(SegmentFiles(tmp_path, 1), [frames], audio, rate, fps, max_frames=10)
    assert capped == 10


def test_stitch_plays_the_segments_end_to_end_with_audio_throughout(tmp_path):
    rate, fps = 16000, 24.0
    lengths = [16, 25, 9]
    files = []
    for i, n in enumerate(lengths):
        f = SegmentFiles(tmp_path / "seg", i)
        write_segment(f, [_frames(n, 10 + i, 64, 64)], np.full((2, round(n * rate / fps)), 0.2, np.float32), rate, fps)
        files.append(f)
    out = tmp_path / "joined.mp4"
    line = stitch(files, lengths, out, fps=fps, sample_rate=rate)
    info = probe(out)
    assert info.frames == sum(lengths) == line.total
    assert info.has_audio and info.audio_duration == pytest.approx(sum(lengths) / fps, abs=0.03)
    # A 4-frame crossfade overlaps each join; a 1.5x speed shortens everything once.
    faded = stitch(files, lengths, tmp_path / "faded.mp4", fps=fps, sample_rate=rate, crossfade_frames=4, speed=1.5)
    info = probe(tmp_path / "faded.mp4")
    assert info.frames == sum(lengths) - 2 * 4 == faded.total
    assert info.duration == pytest.approx(faded.total / (fps * 1.5), abs=0.05)
    bounds = faded.bounds(fps, 1.5)
    assert bounds[0][0] == 0 and bounds[-1][1] == pytest.approx(faded.total / 36)
    assert all(a[1] == pytest.approx(b[0]) for a, b in zip(bounds, bounds[1:]))


def test_a_crossfade_never_covers_more_than_half_a_segment():
    assert timeline([10, 40], 12).crossfade == 5
    assert timeline([30], 12).crossfade == 0
