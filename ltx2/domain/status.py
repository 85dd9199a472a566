"""Job statuses (Replicate/Cog vocabulary) and worker states: one name per meaning."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """Where a job is. `starting` means waiting in the queue (Replicate's word for it), never a running phase."""

    STARTING = "starting"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    # Hash like the plain string, so "succeeded" and JobStatus.SUCCEEDED find the same dict key.
    __hash__ = str.__hash__


TERMINAL = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELED)
ACTIVE = (JobStatus.STARTING, JobStatus.PROCESSING)
STATUSES = tuple(s.value for s in JobStatus)  # the names, for filters and messages

# The moves a job may make: target ← the states it may come from. Nothing leaves a terminal state.
ALLOWED_MOVES: dict[JobStatus, tuple[JobStatus, ...]] = {
    JobStatus.PROCESSING: (JobStatus.STARTING,),  # claim
    JobStatus.SUCCEEDED: (JobStatus.PROCESSING,),
    JobStatus.FAILED: (JobStatus.STARTING, JobStatus.PROCESSING),
    JobStatus.CANCELED: (JobStatus.STARTING, JobStatus.PROCESSING),
    JobStatus.STARTING: (JobStatus.PROCESSING,),  # requeue (reaper, worker shutting down)
}

# The progress phase a freshly claimed job shows before its first step (not a status).
PHASE_CLAIMED = "claimed"


# Worker process exit codes, for the supervisor: 0 stopped on request, 3 setup failed (the engine could not be
# built: restarting will not help); anything else is a crash (restart).
EXIT_OK, EXIT_SETUP_FAILED = 0, 3


class WorkerState(StrEnum):
    STARTING = "starting"  # building the engine
    READY = "ready"
    BUSY = "busy"
    STOPPED = "stopped"
    FAILED = "failed"  # engine setup failed

    @property
    def is_terminal(self) -> bool:
        return self in (WorkerState.STOPPED, WorkerState.FAILED)
