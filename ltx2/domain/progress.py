"""How far a job is in time: phase weights from measured phase costs, one percent over the whole job, elapsed, ETA.

A clip runs five phases (denoising stage 1 and 2, the audio decode, the video VAE decode and the MP4 encode;
the last two overlap). A script
runs them once per segment it generates, then one final encode ("stitch"). Each phase reports (done, total)
from the real code path; the job's percent is the sum of the phases' fractions weighted by what each phase
cost in this server's recent jobs of the same kind (defaults until there are some), so the bar moves with time
rather than sitting at 100% while the video is written. Every fraction only grows, so the percent never goes
back. The ETA leans on the recent jobs of the same size and mode first and on the job's own pace as it advances.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

SEGMENT_PHASES = ("stage 1", "stage 2", "audio", "decode", "encode")
FINISH_PHASE = "stitch"  # a script's final encode over all segments
# Shares of a clip's time before any job was measured here: an H100's split for 768x512x121 (stage 1 1.5 s +
# text 0.6 s, stage 2 1.4 s + upsample 0.25 s, decode 0.85 s, encode 0.75 s; the audio decode unmeasured there)
# rounded; measured jobs replace it.
DEFAULT_WEIGHTS = {"stage 1": 0.38, "stage 2": 0.3, "audio": 0.04, "decode": 0.14, "encode": 0.14}
# A face-profile training: latents once, the steps, a held-out validation, the export, the preview frame.
TRAIN_WEIGHTS = {"encode": 0.08, "train": 0.8, "validate": 0.04, "export": 0.02, "preview": 0.06}
DEFAULT_FINISH_SHARE = 0.1  # of a script's time, before one was measured
RATE_FROM_PERCENT = 1.0  # below this the job's own pace says too little to extrapolate


def job_key(kind: str, mode: str, width: int, height: int, frames: int, segments: int = 1) -> str:
    """Which jobs are alike for an ETA: same kind (clip or script), mode, size, length and segment count."""
    return f"{kind}:{mode}:{width}x{height}x{frames}:{segments}"


def weights_from(records: list[dict[str, float]], default: dict[str, float] = DEFAULT_WEIGHTS) -> dict[str, float]:
    """Normalised phase weights: the mean measured seconds of each phase over `records`, else `default`.

    A record missing one of the phases (an older or a failed measurement) is skipped, so the weights always
    come from complete jobs."""
    complete = [r for r in records if all(r.get(p, -1) >= 0 for p in default)]
    if complete:
        means = {p: statistics.fmean(r[p] for r in complete) for p in default}
        if sum(means.values()) > 0:
            return _normalised(means)
    return _normalised(default)


def finish_share_from(records: list[dict[str, float]], default: float = DEFAULT_FINISH_SHARE) -> float:
    """The share of a script's time its final encode took in recent scripts (`records`: phase seconds)."""
    shares = []
    for r in records:
        total = sum(v for v in r.values() if v >= 0)
        if total > 0 and r.get(FINISH_PHASE, -1) >= 0:
            shares.append(r[FINISH_PHASE] / total)
    return statistics.fmean(shares) if shares else default


def estimate_eta(percent: float, elapsed_s: float, expected_total_s: float | None) -> float | None:
    """Seconds left. Two estimates: the recent alike jobs' typical length scaled by what is left, and this job's
    own pace (elapsed / percent). The history is trusted early, the pace more as the job advances; with no
    history and no measurable pace there is no honest ETA (None)."""
    if percent >= 100.0:
        return 0.0
    rate = elapsed_s * (100.0 - percent) / percent if percent >= RATE_FROM_PERCENT else None
    if expected_total_s is None:
        return None if rate is None else max(0.0, rate)
    history = max(0.0, expected_total_s * (1.0 - percent / 100.0))
    if rate is None:
        return history
    trust = percent / 100.0
    return max(0.0, (1.0 - trust) * history + trust * rate)


def _normalised(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {k: v / total for k, v in weights.items()}


@dataclass(frozen=True)
class Snapshot:
    phase: str  # the phase in front: with decode and encode overlapping, the decode until it ends
    label: str  # what a person reads: "decode", "segment 2/5 · encode"
    step: int
    total: int
    percent: float
    elapsed_s: float
    eta_s: float | None
    frames: dict[str, int] = field(default_factory=dict)  # frames_decoded, frames_encoded, frames_total

    def data(self) -> dict:
        """The figures a job document and the seed's /status carry."""
        out = {"label": self.label, "elapsed_s": round(self.elapsed_s, 2)}
        out["eta_s"] = None if self.eta_s is None else round(self.eta_s, 1)
        out.update(self.frames)
        return out


class JobMeter:
    """Turns phase reports into one snapshot of the whole job; measures each phase's seconds for later jobs."""

    def __init__(
        self,
        weights: dict[str, float] | None = None,
        *,
        units: int = 1,
        finish_share: float = 0.0,
        expected_total_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.clock = clock
        self.started = clock()
        self.plan(weights, units=units, finish_share=finish_share, expected_total_s=expected_total_s)
        self.fractions: dict[tuple[int, str], float] = {}  # (unit, phase) -> done share, in first-seen order
        self.frames: dict[tuple[int, str], tuple[int, int]] = {}
        self.where: dict[int, str] = {}
        self.phase_seconds: dict[str, float] = {}
        self.boundary = self.started
        self.percent = 0.0

    def plan(
        self,
        weights: dict[str, float] | None = None,
        *,
        units: int = 1,
        finish_share: float = 0.0,
        expected_total_s: float | None = None,
    ) -> None:
        """What the job is: `units` segments (1 for a clip) and, for a script, the final encode's share."""
        self.weights = _normalised(weights or DEFAULT_WEIGHTS)
        self.units = max(1, units)
        self.finish_share = min(max(finish_share, 0.0), 1.0)
        self.expected_total_s = expected_total_s

    def update(
        self, phase: str, step: int, total: int, unit: int = 0, frames: bool = False, where: str | None = None
    ) -> Snapshot:
        """`phase` has done `step` of `total` (denoising steps, or frames when `frames`) in segment `unit` (0 for a
        clip; a script's final encode may use any). `where` names the segment for people ("segment 2/5")."""
        now = self.clock()
        key = (unit, phase)
        fraction = min(1.0, step / total) if total > 0 else 1.0
        before = self.fractions.get(key, 0.0)
        self.fractions[key] = max(before, fraction)
        if where:
            self.where[unit] = where
        if frames:
            self.frames[key] = (max(step, self.frames.get(key, (0, 0))[0]), total)
        if before < 1.0 <= fraction:
            # A phase's cost is the time since the previous phase ended: the gaps between progress reports (text
            # encoding before stage 1, the upsampler before stage 2) belong to the phase they precede.
            self.phase_seconds[phase] = self.phase_seconds.get(phase, 0.0) + (now - self.boundary)
            self.boundary = now
        self.percent = max(self.percent, self._percent())
        elapsed = now - self.started
        front = self._front(unit)
        done, of = self.frames.get(front) or (round(self.fractions[front] * total), total)
        if front == key:
            done, of = step, total
        return Snapshot(
            phase=front[1],
            label=f"{self.where[unit]} · {front[1]}" if unit in self.where and phase != FINISH_PHASE else front[1],
            step=done,
            total=of,
            percent=self.percent,
            elapsed_s=elapsed,
            eta_s=estimate_eta(self.percent, elapsed, self.expected_total_s),
            frames=self._frame_figures(front),
        )

    def record(self) -> dict:
        """What a finished job keeps for the next ones: each phase's seconds and the whole job's."""
        return {
            "phase_seconds": {k: round(v, 3) for k, v in self.phase_seconds.items()},
            "total_s": round(self.clock() - self.started, 3),
        }

    def _percent(self) -> float:
        segments = finish = 0.0
        for (_, phase), f in self.fractions.items():
            if phase == FINISH_PHASE:
                finish = max(finish, f)
            else:
                segments += self.weights.get(phase, 0.0) * f
        share = self.finish_share
        return 100.0 * min(1.0, (1.0 - share) * segments / self.units + share * finish)

    def _front(self, unit: int) -> tuple[int, str]:
        """The first unfinished phase of this unit that has begun (decode before encode while they overlap),
        else its latest. A phase announced at 0 (preparing, the audio decode) stops counting once a later one
        reports: the later one is what runs."""
        keys = [k for k in self.fractions if k[0] == unit]
        begun = [k for k in keys[:-1] if self.fractions[k] > 0.0] + keys[-1:]
        return next((k for k in begun if self.fractions[k] < 1.0), keys[-1])

    def _frame_figures(self, front: tuple[int, str]) -> dict[str, int]:
        names = {"decode": "frames_decoded", "encode": "frames_encoded", FINISH_PHASE: "frames_encoded"}
        phases = (FINISH_PHASE,) if front[1] == FINISH_PHASE else ("decode", "encode")
        out: dict[str, int] = {}
        for phase in phases:
            got = self.frames.get((front[0], phase))
            if got is not None:
                out[names[phase]], out["frames_total"] = got
        return out
