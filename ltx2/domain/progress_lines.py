"""Progress as Replicate models print it: a tqdm-style line (`  45%|████      | 45/100 [decode 40/121]`), which
both official clients parse out of a prediction's logs (`Prediction.progress`, `parseProgressFromLogs`).

The count the clients read is the whole job's percent out of 100: a job's steps restart at each phase
(denoising steps, then frames decoded, then frames encoded), and the clients expect one count that only grows.
The phase's own count goes in the brackets."""

from __future__ import annotations

_BAR = 10


def progress_line(percent: float, step: int, total: int, phase: str | None) -> str:
    filled = min(_BAR, max(0, int(percent / 100 * _BAR)))
    bar = "█" * filled + " " * (_BAR - filled)
    where = f"{phase or 'generate'} {step}/{total}" if total else (phase or "generate")
    return f"{int(percent):3d}%|{bar}| {int(percent)}/100 [{where}]"
