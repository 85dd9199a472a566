"""Per-step progress and cancellation for ltx-pipelines' denoising loops.

Every sampler loop in ltx-pipelines iterates its sigma schedule through `tqdm(...)`, looked up in
`ltx_pipelines.utils.samplers`. That is the one seam the library gives for "a step is about to run", so the
engine installs a tracker there: it reports (phase, step, total) and checks the cancel flag before each step,
which stops a job within one step. The active job is held in a context variable; with no job active the
tracker is a plain pass-through.

The render path reports its other phases with the same `Progress` (`frames=True`: the VAE decode and the MP4
encode count frames), and its first report carries the job's `plan` (kind, mode, size, segments) so a listener
can weigh the phases by what alike jobs cost (ltx2.domain.progress).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from ltx2.domain.errors import JobCanceled


@dataclass(frozen=True)
class Progress:
    phase: str
    step: int  # steps finished in this phase
    total: int  # steps of this phase
    overall_step: int  # denoising steps finished over the whole job
    overall_total: int
    frames: bool = False  # step/total count frames (decode, encode, stitch), not denoising steps
    unit: int = 0  # which generated segment of a script (0 for a clip)
    where: str | None = None  # the segment for people: "segment 2/5"
    plan: dict | None = None  # on a job's first report: what the job is (ltx2.domain.progress.job_key's fields)

    @property
    def percent(self) -> float:
        return 100.0 * self.overall_step / self.overall_total if self.overall_total else 0.0


ProgressCallback = Callable[[Progress], None]
AUDIO_PHASE = "audio"  # between the last denoising step and generate's return: the audio VAE and the vocoder
CancelCheck = Callable[[], bool]


class StepTracker:
    def __init__(
        self,
        phases: list[tuple[str, int]],
        on_progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ):
        self.phases = phases
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.loop_index = 0
        self.done = 0

    @property
    def total(self) -> int:
        return sum(n for _, n in self.phases)

    def _phase(self) -> str:
        if self.loop_index < len(self.phases):
            return self.phases[self.loop_index][0]
        return f"loop {self.loop_index + 1}"

    def emit(self, phase: str, step: int, total: int) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(phase, step, total, self.done, max(self.total, self.done)))

    def check_cancel(self) -> None:
        if self.should_cancel is not None and self.should_cancel():
            raise JobCanceled("canceled")

    def iterate(self, iterable: Iterable) -> Iterator:
        items = list(iterable)
        phase = self._phase()
        self.loop_index += 1
        for index, item in enumerate(items):
            self.check_cancel()
            yield item
            self.done += 1
            self.emit(phase, index + 1, len(items))
        if self.loop_index == len(self.phases) and self.on_progress is not None:
            # The last denoising loop is over; the pipeline decodes the sound next (its VAE and vocoder run
            # before it returns), and the caller reports that phase done when generate returns.
            self.on_progress(Progress(AUDIO_PHASE, 0, 1, self.done, max(self.total, self.done)))


_active: contextvars.ContextVar[StepTracker | None] = contextvars.ContextVar("avatar_step_tracker", default=None)
_installed = False


def _tracked_tqdm(iterable=None, *args, **kwargs):
    tracker = _active.get()
    if tracker is None or iterable is None:
        return iterable if iterable is not None else range(0)
    return tracker.iterate(iterable)


def install() -> None:
    """Route the samplers' progress bars through the active tracker (idempotent)."""
    global _installed
    if _installed:
        return
    from ltx_pipelines.utils import samplers

    samplers.tqdm = _tracked_tqdm
    _installed = True


class tracking:
    """Context manager making `tracker` the active one for denoising loops run inside it."""

    def __init__(self, tracker: StepTracker):
        self.tracker = tracker
        self.token = None

    def __enter__(self) -> StepTracker:
        install()
        self.token = _active.set(self.tracker)
        return self.tracker

    def __exit__(self, *exc) -> None:
        _active.reset(self.token)
