"""A job's progress as the worker writes it: a generation's phases weighed by this server's recent alike jobs.

The render path reports real events (denoising steps, frames decoded, frames encoded; a plan first). This turns
them into the job's row: the phase in front, its counts, one percent over the whole job, elapsed and ETA
(ltx2.domain.progress). When the job succeeds, its measured phase seconds stay in `progress_data`, so the
next jobs are weighed and timed by it.
"""

from __future__ import annotations

import statistics

from ltx2.domain.progress import SEGMENT_PHASES, TRAIN_WEIGHTS, JobMeter, finish_share_from, job_key, weights_from
from ltx2.store.jobs import JobStore

HISTORY = 20  # alike jobs an estimate looks at (the newest)


class GenerationProgress:
    def __init__(self, store: JobStore):
        self.store = store
        self.meter = JobMeter()
        self.key: str | None = None

    def plan(self, plan: dict) -> None:
        self.key = job_key(**plan)
        kind = plan["kind"]
        records = [r for r in self.store.recent_timings("generate") if str(r.get("key", "")).startswith(f"{kind}:")]
        alike = [r for r in records if r.get("key") == self.key][:HISTORY]
        # Phase shares carry over between sizes of one kind; a typical length only from the same size and mode.
        basis = [r["phase_seconds"] for r in (alike or records[:HISTORY])]
        expected = statistics.median(r["total_s"] for r in alike) if alike else None
        finish = 0.0
        if kind == "script":
            finish = 1.0 if plan["segments"] == 0 else finish_share_from(basis)
        weights = weights_from([{p: b.get(p, -1) for p in SEGMENT_PHASES} for b in basis])
        self.meter.plan(weights, units=plan["segments"], finish_share=finish, expected_total_s=expected)

    def update(self, p, data: dict | None) -> tuple[str, int, int, float, dict]:
        """(phase, step, total, percent, progress_data) for the job row."""
        if getattr(p, "plan", None):
            self.plan(p.plan)
        snap = self.meter.update(
            p.phase,
            p.step,
            p.total,
            unit=getattr(p, "unit", 0),
            frames=getattr(p, "frames", False),
            where=getattr(p, "where", None),
        )
        return snap.phase, snap.step, snap.total, snap.percent, {**(data or {}), **snap.data(), "key": self.key}

    def record(self, data: dict | None) -> dict:
        """The progress data a finished job keeps: its last figures plus the measured phase seconds."""
        return {**(data or {}), "key": self.key, **self.meter.record(), "eta_s": 0.0}


class TrainingProgress:
    """A training's percent over all its phases (the training reports its own ETA of the remaining steps)."""

    def __init__(self):
        self.meter = JobMeter(TRAIN_WEIGHTS)

    def update(self, p, data: dict | None) -> tuple[str, int, int, float, dict]:
        snap = self.meter.update(p.phase, p.step, p.total)
        return p.phase, p.step, p.total, snap.percent, {**(data or {}), "elapsed_s": round(snap.elapsed_s, 2)}
