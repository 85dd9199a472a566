"""Burned-in captions fit the frame: every size the server makes, from a 64×64 draft to 2048×2048, keeps each
caption pixel off the frame's edges and out of the strip at the bottom where players draw their controls."""

from __future__ import annotations

import numpy as np
import pytest

from ltx2.domain.captions import build_cues
from ltx2.script.stitch import burn_caption, caption_layout

LONG = (
    "Welcome to the studio tour. Today we look at how a long script becomes one video, segment by segment, "
    "with captions that always stay readable."
)
SIZES = [(64, 64), (128, 128), (384, 256), (768, 512), (2048, 2048), (2048, 64), (64, 2048)]


def cues() -> list[str]:
    texts = [c.text for c in build_cues([(LONG, 0.0, 10.0)])]
    assert max(len(t) for t in texts) > 30, "the cues must be long enough to need wrapping on small frames"
    return texts + ["Supercalifragilisticexpialidocious!"]  # one word wider than a small frame


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_caption_pixels_stay_inside_the_frame(width, height):
    for text in cues():
        layout = caption_layout(text, width, height)
        frame = np.full((height, width, 3), 128, np.uint8)  # grey, so both the white text and its black outline show
        drawn = (burn_caption(frame, layout) != 128).any(axis=2)
        assert drawn.any(), (width, height, text)
        edges = np.concatenate([drawn[0], drawn[-1], drawn[:, 0], drawn[:, -1]])
        assert not edges.any(), f"a caption pixel touches the edge of {width}×{height}: {text!r}"
        rows = np.flatnonzero(drawn.any(axis=1))
        cols = np.flatnonzero(drawn.any(axis=0))
        assert rows.max() < height - round(height * 0.08), f"the caption sits under the player's controls: {text!r}"
        assert cols.min() >= 1 and cols.max() <= width - 2
        # Nothing is lost to the wrapping: the drawn lines hold the cue's words, in order.
        assert "".join(layout.text.split()) == "".join(text.split())


def test_font_follows_the_frame():
    small = caption_layout("Hello there.", 768, 512).font.size
    large = caption_layout("Hello there.", 2048, 2048).font.size
    assert large > 2 * small, (small, large)


@pytest.mark.parametrize(("width", "height"), [(64, 64), (768, 512)])
def test_stitched_video_keeps_its_captions_inside_the_frame(tmp_path, width, height):
    """Through the real stitch and encode: the decoded MP4 shows the caption, and its edges stay clear."""
    import av

    from ltx2.script.stitch import SegmentFiles, stitch, write_segment

    fps, rate, frames = 24.0, 16000, 24
    grey = np.full((frames, height, width, 3), 128, np.uint8)
    silence = np.zeros((2, rate * frames // int(fps)), np.float32)
    segments = [SegmentFiles(tmp_path / "seg", i) for i in range(2)]
    for files in segments:
        write_segment(files, [grey], silence, rate, fps)
    cues = build_cues([(LONG, 0.0, 2 * frames / fps)])
    out = tmp_path / "captioned.mp4"
    stitch(segments, [frames, frames], out, fps=fps, sample_rate=rate, burn_in=cues)

    with av.open(str(out)) as container:
        decoded = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(decoded) == 2 * frames
    for frame in decoded[::6]:
        caption = np.abs(frame.astype(int) - 128).max(axis=2) > 48  # text or outline, not compression ripples
        assert caption.any(), "the caption is in the picture"
        edges = np.concatenate([caption[0], caption[-1], caption[:, 0], caption[:, -1]])
        assert not edges.any(), f"a caption pixel touches the edge of the {width}×{height} video"
