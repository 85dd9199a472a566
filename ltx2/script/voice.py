"""Own-voice scripts: cut the recording at silences near where the text's segments meet."""

from __future__ import annotations

import numpy as np

WINDOW_S = 0.05  # loudness is measured over 50 ms windows
SEARCH_S = 1.5  # a cut may move this far from its estimate to land in a pause


def _loudness(samples: np.ndarray, rate: int) -> np.ndarray:
    mono = samples.mean(axis=0) if samples.ndim == 2 else samples
    hop = max(1, int(rate * WINDOW_S))
    n = len(mono) // hop
    if n == 0:
        return np.zeros(0, np.float32)
    frames = mono[: n * hop].reshape(n, hop)
    return np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))


def cut_points(
    samples: np.ndarray,
    rate: int,
    weights: list[float],
    *,
    max_seconds: float,
    min_seconds: float = 1.0,
) -> list[float]:
    """Boundaries (seconds, from 0 to the end) splitting the recording into len(weights) pieces.

    Each cut starts where the pieces' shares of `weights` (the text's speech estimates) put it and moves to
    the quietest 50 ms within SEARCH_S, without making a piece longer than `max_seconds` or shorter than
    `min_seconds`. More pieces are added when the recording is too long for len(weights) clips.
    """
    duration = samples.shape[-1] / rate
    count = max(len(weights), int(np.ceil(duration / max_seconds - 1e-9)))
    if count > len(weights):  # the voice is slower than the estimate: split evenly instead
        weights = [1.0] * count
    total = float(sum(weights))
    loud = _loudness(samples, rate)
    cuts = [0.0]
    acc = 0.0
    for i, w in enumerate(weights[:-1]):
        acc += w
        target = duration * acc / total
        remaining_pieces = count - i - 1
        lo = max(cuts[-1] + min_seconds, target - SEARCH_S, duration - remaining_pieces * max_seconds)
        hi = min(cuts[-1] + max_seconds, target + SEARCH_S, duration - remaining_pieces * min_seconds)
        if hi < lo:
            lo = hi = min(max(target, lo), cuts[-1] + max_seconds)
        a, b = int(lo / WINDOW_S), int(np.ceil(hi / WINDOW_S))
        window = loud[a:b]
        if len(window):
            # Quietest window; ties go to the one nearest the estimate.
            nearest = np.abs(np.arange(a, a + len(window)) * WINDOW_S + WINDOW_S / 2 - target)
            best = np.lexsort((nearest, np.round(window, 6)))[0]
            cut = (a + best) * WINDOW_S + WINDOW_S / 2
        else:
            cut = target
        cuts.append(float(min(max(cut, lo), hi)))
    cuts.append(duration)
    return cuts
