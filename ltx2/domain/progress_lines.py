"""Progress as Replicate models print it: a tqdm-style line (`  45%|████▌     | 5/11 [phase]`), which both
official clients parse out of a prediction's logs (`Prediction.progress`, `parseProgressFromLogs`)."""

from __future__ import annotations

_BAR = 10


def progress_line(percent: float, step: int, total: int, phase: str | None) -> str:
    filled = min(_BAR, max(0, int(percent / 100 * _BAR)))
    bar = "█" * filled + " " * (_BAR - filled)
    return f"{int(percent):3d}%|{bar}| {step}/{total} [{phase or 'generate'}]"
