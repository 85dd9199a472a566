"""The encoder fed the way the engine feeds it: torch tensors, chunk by chunk."""

from __future__ import annotations

import weakref

import torch

from ltx2.media import encode_mp4, probe
from tests.unit.test_media import SR, N, chunked, gradient_frames, sine


def test_accepts_torch_chunks(tmp_path):
    chunks = (torch.from_numpy(c.copy()) for c in chunked(gradient_frames()))
    out = encode_mp4(chunks, 25, tmp_path / "t.mp4", audio=torch.from_numpy(sine(1.0)), sample_rate=SR)
    assert probe(out).frames == N


def test_chunks_are_released_as_they_are_encoded(tmp_path):
    # Long clips must not pile up in memory: a chunk two steps back must be freed.
    frames = gradient_frames(40)
    refs, still_alive = [], []

    def lazy():
        for i in range(0, len(frames), 8):
            still_alive.extend(k for k, r in enumerate(refs[:-1]) if r() is not None)
            t = torch.from_numpy(frames[i : i + 8].copy())
            refs.append(weakref.ref(t))
            yield t
            del t

    encode_mp4(lazy(), 25, tmp_path / "a.mp4", audio=sine(1.6), sample_rate=SR, speed=1.25)
    assert still_alive == []
