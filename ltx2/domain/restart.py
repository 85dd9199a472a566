"""The one restart policy for supervised processes (worker processes, the studio)."""

from __future__ import annotations

FIRST_DELAY_S, MAX_DELAY_S = 1.0, 30.0
STEADY_RUN_S = 60.0  # a process that ran this long before dying is restarted quickly again


def restart_delay(previous_s: float, ran_s: float) -> float:
    """Quick restart after a long run, doubling while it keeps dying (1 s … 30 s)."""
    return FIRST_DELAY_S if ran_s > STEADY_RUN_S else min(previous_s * 2, MAX_DELAY_S)
