"""The worker process: builds the engine once, then claims and runs jobs one at a time.

Exit codes (for the supervisor): 0 stopped on request, 3 setup failed (engine could not be built: restarting
will not help), anything else a crash (restart).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable

from loguru import logger

from ltx2.domain.status import EXIT_OK, EXIT_SETUP_FAILED, WorkerState
from ltx2.settings import Settings, get_settings
from ltx2.state import configure_logging, secure_state
from ltx2.store import lifecycle
from ltx2.store.jobs import JobStore
from ltx2.store.links import links_for
from ltx2.store.models import CANCELED, FAILED, STARTING, SUCCEEDED
from ltx2.store.notifier import Notifier
from ltx2.worker.lifeline import watch_supervisor
from ltx2.worker.progress import GenerationProgress, TrainingProgress

KINDS = ("generate", "train")
PROGRESS_INTERVAL_S = 0.5  # at most ~2 progress writes a second


class Worker:
    def __init__(self, settings: Settings | None = None, worker_id: str | None = None):
        self.settings = settings or get_settings()
        name = self.settings.worker_name or socket.gethostname()
        self.id = worker_id or f"{name}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.store = JobStore(self.settings.db_url, links=links_for(self.settings))
        self.stopping = threading.Event()  # finish the current job, then exit
        self.aborting = threading.Event()  # second signal: requeue the current job now
        self.engine = None
        self.current_job: str | None = None  # the job using the model
        self.jobs_in_hand: set[str] = set()  # it, and a finished one whose CPU tail still runs
        self._tail: threading.Thread | None = None

    def _on_supervisor_lost(self) -> None:
        """The supervisor died (its restart will start a new worker): requeue the job in hand and exit now, mid-step
        or mid-load. Outputs are written atomically, so stopping anywhere leaves nothing half-written."""
        try:
            for job_id in list(self.jobs_in_hand):
                if lifecycle.move(self.store, job_id, STARTING, worker_id=self.id):
                    self.store.append_log(job_id, f"worker {self.id} lost its supervisor: job requeued")
            self.store.worker_seen(self.id, state=WorkerState.STOPPED)
        except Exception:  # noqa: BLE001 - leave anyway; the reaper requeues a job whose heartbeat stops
            logger.exception("worker {}: could not requeue after losing the supervisor", self.id)
        finally:
            os._exit(EXIT_OK)

    def _on_signal(self, signum, _frame) -> None:
        if self.stopping.is_set():
            logger.warning("worker {}: second signal, requeueing the current job", self.id)
            self.aborting.set()
        self.stopping.set()

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        watch_supervisor(self._on_supervisor_lost)
        configure_logging()
        secure_state(self.settings)
        self.store.migrate()
        # Webhooks of this worker's moves go out from here too, so a machine without an API still sends them.
        notifier = Notifier(self.store, self.settings).start()
        self.store.worker_seen(self.id, state=WorkerState.STARTING, pid=os.getpid(), device=self.settings.device)
        loaded, beat_lock = threading.Event(), threading.Lock()
        # Real weights take minutes to load: keep heartbeating "starting" so /health-check says STARTING.
        threading.Thread(
            target=self._heartbeat_while_loading, args=(loaded, beat_lock), name="loading-heartbeat", daemon=True
        ).start()
        try:
            from ltx2.engine.factory import load_engine

            self.engine = load_engine(self.settings)
            seconds = self.engine.warm_up()
            if self.settings.compile:
                from ltx2.engine.speedups import parse_shapes

                compiled = self.engine.warm_compiled(parse_shapes(self.settings.compile_shapes))
                logger.info(
                    "worker {}: transformer compiled for {} in {:.1f}s", self.id, self.settings.compile_shapes, compiled
                )
                seconds += compiled
        except Exception as exc:  # noqa: BLE001 - any failure here means this worker cannot serve
            with beat_lock:  # no "starting" beat may land after "failed"
                loaded.set()
            logger.exception("worker {}: engine setup failed", self.id)
            self.store.worker_seen(self.id, state=WorkerState.FAILED, error=f"{exc.__class__.__name__}: {exc}")
            notifier.stop(timeout=1)
            return EXIT_SETUP_FAILED
        with beat_lock:
            loaded.set()
        # Which set it runs, so /health-check can say real (verified or configured) or the tiny checkpoint.
        info = {**self.engine.model_info, "weights_source": self.settings.weights_source}
        self.store.worker_seen(self.id, state=WorkerState.READY, device=info["device"], model=info)
        logger.info(
            "worker {} ready in {:.1f}s on {} ({})",
            self.id,
            seconds,
            info["device"],
            "tiny checkpoint" if info["tiny"] else info["family"],
        )
        last_seen = 0.0
        # PostgreSQL: idle workers LISTEN and are woken by a NOTIFY when a job is queued, so they only need to
        # look at the queue every heartbeat (a missed notification costs at most that); elsewhere they poll.
        idle_wait = (
            max(self.settings.poll_s, self.settings.heartbeat_s) if self.store.can_listen else self.settings.poll_s
        )
        while not self.stopping.is_set():
            job = lifecycle.claim(self.store, self.id, KINDS)
            if job is None:
                if time.monotonic() - last_seen > self.settings.heartbeat_s:
                    self.store.worker_seen(self.id, state=WorkerState.READY)
                    last_seen = time.monotonic()
                self.store.wait_for_job(idle_wait, self.stopping)
                continue
            self.run_job(job)
            last_seen = 0.0
        self._join_tail()
        self.store.worker_seen(self.id, state=WorkerState.STOPPED)
        notifier.stop(timeout=10)
        self.store.close()
        return EXIT_OK

    def _heartbeat_while_loading(self, loaded: threading.Event, lock: threading.Lock) -> None:
        while not loaded.wait(self.settings.heartbeat_s):
            try:
                with lock:
                    if not loaded.is_set():
                        self.store.worker_seen(self.id, state=WorkerState.STARTING)
            except Exception:  # noqa: BLE001 - a missed beat is retried on the next one
                logger.exception("worker {}: heartbeat while loading failed", self.id)

    def run_job(self, job) -> None:
        """Run one job's model work; a clip's CPU tail (encode, thumbnail, metadata, hash) then goes on in a
        thread so the model can start the next job. The job stays processing, heartbeating, until its tail
        has written its files; at most one tail runs beside the model."""
        from ltx2.worker.runners import run_generate, run_train

        store, settings = self.store, self.settings
        logger.info("worker {}: job {} ({}) attempt {}", self.id, job.id, job.kind, job.attempt)
        self.current_job = job.id
        self.jobs_in_hand.add(job.id)
        store.worker_seen(self.id, state=WorkerState.BUSY, job_id=job.id)
        self._log(job.id, f"started on worker {self.id} (attempt {job.attempt})")
        lost = threading.Event()
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(settings.heartbeat_s):
                if not store.heartbeat(job.id, self.id):
                    lost.set()  # reaped or deleted: stop working on it
                store.worker_seen(self.id, state=WorkerState.BUSY, job_id=self.current_job or job.id)

        beat = threading.Thread(target=heartbeat, name=f"heartbeat-{job.id}", daemon=True)
        beat.start()

        def release() -> None:
            done.set()
            beat.join()
            self.jobs_in_hand.discard(job.id)
            if not self.jobs_in_hand:
                store.worker_seen(self.id, state=WorkerState.READY)

        last_write = [0.0]
        phases: set[str] = set()
        # One percent over the whole job; a generation's phases weighed by this server's recent jobs, with an ETA.
        generation = GenerationProgress(store) if job.kind == "generate" else None
        meter = generation or TrainingProgress()
        last_data: list[dict | None] = [None]

        def on_progress(p, data: dict | None = None) -> None:
            name = " · ".join(filter(None, (getattr(p, "where", None), p.phase)))
            if name not in phases and p.phase != "prepare":
                phases.add(name)
                self._log(job.id, f"{name}: {p.total} {'frames' if getattr(p, 'frames', False) else 'steps'}")
            phase, step, total, percent, data = meter.update(p, data)
            last_data[0] = data
            now = time.monotonic()
            if now - last_write[0] >= PROGRESS_INTERVAL_S or p.step >= p.total:
                store.set_progress(
                    job.id, phase=phase, step=step, total=total, percent=percent, data=data, worker_id=self.id
                )
                last_write[0] = now

        def should_cancel() -> bool:
            return self.aborting.is_set() or lost.is_set() or store.cancel_requested(job.id)

        def keep_timings() -> None:
            if generation is not None:  # its measured phase seconds weigh and time the next jobs
                record = generation.record(last_data[0])
                store.set_progress(job.id, phase="done", step=1, total=1, percent=100.0, data=record, worker_id=self.id)

        runner = run_train if job.kind == "train" else run_generate
        tail = None
        try:
            tail = self._settle(
                job, lambda: runner(self.engine, settings, store, job, on_progress, should_cancel), lost, keep_timings
            )
        finally:
            self.current_job = None
            if tail is None:
                release()
        if tail is not None:
            self._join_tail()  # one tail at a time: a slow encode holds the queue back rather than piling up

            def finish() -> None:
                try:
                    self._settle(job, tail, lost, keep_timings)
                finally:
                    release()

            self._tail = threading.Thread(target=finish, name=f"tail-{job.id}", daemon=True)
            self._tail.start()

    def _settle(self, job, work, lost: threading.Event, on_success: Callable[[], None] | None = None):
        """Run `work` and make the job's final move from how it ended; a callable result is the job's CPU tail,
        returned unsettled. `on_success` runs just before the succeeded move."""
        from ltx2.domain.errors import InvalidInputError, JobCanceled, OutOfMemoryError

        store = self.store
        try:
            output = work()
        except JobCanceled:
            if self.aborting.is_set():
                lifecycle.move(store, job.id, STARTING, worker_id=self.id, log="worker shutting down: job requeued")
            elif not lost.is_set():
                lifecycle.move(store, job.id, CANCELED, worker_id=self.id, log="canceled")
        except InvalidInputError as exc:
            self._fail(job, "invalid_input", str(exc))
        except OutOfMemoryError as exc:  # the engine freed its cache already
            self._fail(job, "out_of_memory", str(exc))
        except Exception as exc:  # noqa: BLE001 - one job's crash must not take the worker down
            logger.exception("worker {}: job {} crashed", self.id, job.id)
            store.append_log(job.id, traceback.format_exc(limit=8))
            self._fail(job, "internal_error", f"{exc.__class__.__name__}: {exc}")
        else:
            if callable(output):
                return output
            if on_success is not None:
                on_success()
            # Only now, with its files written, is the job succeeded.
            lifecycle.move(store, job.id, SUCCEEDED, worker_id=self.id, output=output, log="succeeded")
        return None

    def _join_tail(self) -> None:
        if self._tail is not None:
            self._tail.join()
            self._tail = None

    def _fail(self, job, code: str, message: str) -> None:
        lifecycle.move(
            self.store,
            job.id,
            FAILED,
            worker_id=self.id,
            error=message,
            error_code=code,
            log=f"failed ({code}): {message}",
        )

    def _log(self, job_id: str, line: str) -> None:
        lifecycle.log(self.store, job_id, line)


def main() -> int:
    return Worker().run()
