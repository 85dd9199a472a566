"""`avatar serve`: the API in this process, one supervised worker process per device.

A worker that exits is started again with a growing delay; one that exits with EXIT_SETUP_FAILED (the engine
could not be built: missing weights, no GPU) is not, and /health-check reports SETUP_FAILED.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from loguru import logger

from ltx2.domain.net import bind_addresses, binds_loopback_only
from ltx2.domain.restart import FIRST_DELAY_S, restart_delay
from ltx2.domain.status import EXIT_SETUP_FAILED
from ltx2.settings import Settings
from ltx2.state import check_database


def check_bind(settings: Settings) -> None:
    """Refuse to listen beyond this machine without an API key; judged on the addresses uvicorn will really bind
    ("" binds every interface), so no spelling of the host gets around it."""
    check_database(settings.db_url)  # before any process starts: an emptied database is never "migrated"
    if settings.api_keys or binds_loopback_only(settings.host):
        return
    try:
        where = ", ".join(str(a) for a in bind_addresses(settings.host))
    except ValueError as exc:
        where = str(exc)
    raise SystemExit(
        f"refusing to listen on {settings.host or repr(settings.host)} without an API key (it binds {where}): "
        "set AVATAR_API_KEYS='[\"…\"]' or listen on 127.0.0.1 and reach it through an SSH tunnel"
    )


class Supervisor:
    def __init__(self, settings: Settings, count: int, env: dict[str, str] | None = None):
        self.settings = settings
        self.count = count
        self.env = env or {}
        self.stop = threading.Event()
        self.procs: list[subprocess.Popen | None] = [None] * count
        self.restarts = [0] * count
        self.threads: list[threading.Thread] = []

    def _env(self, slot: int) -> dict[str, str]:
        env = {**os.environ, **self.env, "AVATAR_SUPERVISOR_PID": str(os.getpid())}
        if self.count > 1 and self.settings.device == "auto":
            env["CUDA_VISIBLE_DEVICES"] = str(slot)  # one GPU per worker
        return env

    def _watch(self, slot: int) -> None:
        delay = FIRST_DELAY_S
        while not self.stop.is_set():
            started = time.monotonic()
            proc = subprocess.Popen([sys.executable, "-m", "ltx2.cli", "worker"], env=self._env(slot))
            self.procs[slot] = proc
            code = proc.wait()
            if self.stop.is_set():
                return
            if code == EXIT_SETUP_FAILED:
                logger.error("worker {} could not set up its engine (exit {}); not restarting it", slot, code)
                return
            self.restarts[slot] += 1
            delay = restart_delay(delay, time.monotonic() - started)
            logger.warning("worker {} exited with {}; restarting in {:.0f}s", slot, code, delay)
            self.stop.wait(delay)

    def start(self) -> None:
        for slot in range(self.count):
            thread = threading.Thread(target=self._watch, args=(slot,), name=f"supervise-{slot}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def shutdown(self, grace_s: float = 30.0) -> None:
        """SIGTERM lets a worker finish its job; past the grace period it is killed (the reaper requeues)."""
        self.stop.set()
        live = [p for p in self.procs if p is not None and p.poll() is None]
        for proc in live:
            proc.terminate()
        deadline = time.monotonic() + grace_s
        for proc in live:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
