"""A real `avatar serve` (uvicorn + supervised worker processes) on loopback, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from ltx2.settings import PROJECT_ROOT
from tests.pace import scaled


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, root: Path, *, workers: int = 1, env: dict[str, str] | None = None, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.workers = workers
        self.env = {
            **os.environ,
            "AVATAR_OUTPUTS_DIR": str(root / "outputs"),
            "AVATAR_TEMP_DIR": str(root / "temp"),
            "AVATAR_MODELS_DIR": str(PROJECT_ROOT / "models"),
            "AVATAR_HEARTBEAT_S": "0.5",
            "AVATAR_STALE_AFTER_S": "5",
            "AVATAR_POLL_S": "0.1",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        self.env.pop("AVATAR_CHECKPOINT", None)
        self.proc: subprocess.Popen | None = None
        self.log = root / f"server-{self.port}.log"
        self.client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True) -> LiveServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ltx2.cli",
                "serve",
                "--no-ui",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=PROJECT_ROOT,
        )
        self.wait_for(lambda: self._get("/health") is not None, 60, "the API to answer")
        if wait_ready and self.workers:
            self.wait_for(lambda: self.health_check()["status"] == "READY", 120, "a READY worker")
        return self

    def _get(self, path: str):
        try:
            response = self.client.get(path)
            return response if response.status_code == 200 else None
        except httpx.HTTPError:
            return None

    def health_check(self) -> dict:
        return self.client.get("/health-check").json()

    def worker_pids(self) -> list[int]:
        return [w["pid"] for w in self.health_check()["workers"] if w["alive"]]

    def wait_for(self, predicate, timeout: float, what: str, interval: float = 0.2):
        """Poll `predicate` until it is truthy; `timeout` is the budget on the reference machine (tests/pace.py)."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(
                    f"server exited ({self.proc.returncode}) while waiting for {what}:\n" + self.log.read_text()[-4000:]
                )
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{self.log.read_text()[-4000:]}")

    def wait_status(self, job_id: str, statuses: tuple[str, ...], timeout: float = 120) -> dict:
        def done():
            doc = self.client.get(f"/v1/predictions/{job_id}").json()
            return doc if doc["status"] in statuses else None

        return self.wait_for(done, timeout, f"job {job_id} to reach {statuses}")

    def stop(self, grace: float = 30) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.client.close()
