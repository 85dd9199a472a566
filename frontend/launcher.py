"""The studio as a supervised subprocess of `avatar serve`: `streamlit run frontend/app.py`, restarted if it dies.

Kept free of `ltx2` imports but its address rules (`ltx2.net`), so `avatar serve` can hand it plain values.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from frontend import config
from ltx2.domain.restart import FIRST_DELAY_S, restart_delay

APP = Path(__file__).resolve().parent / "app.py"
PRIMARY_COLOR = "#1c6ddb"  # a calm blue: buttons, sliders and the focus ring of text boxes


class Studio:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        api_url: str,
        api_key: str | None = None,
        max_upload_mb: int = 50,
        env: dict[str, str] | None = None,
    ):
        self.host, self.port = host, port
        self.api_url, self.api_key = api_url, api_key
        self.max_upload_mb = max_upload_mb
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()  # stop() and a restart never cross: no process is started after stop()
        self._thread: threading.Thread | None = None

    @classmethod
    def for_api(
        cls, *, api_host: str, api_port: int, ui_port: int, api_keys: list[str], max_upload_mb: int = 50
    ) -> Studio:
        """The studio of one `avatar serve`: same listen address as the API, talking to that API."""
        key = config.api_key() or (api_keys[0] if api_keys else None)
        return cls(
            host=api_host,
            port=ui_port,
            api_url=f"http://{config.connect_host(api_host)}:{api_port}",
            api_key=key,
            max_upload_mb=max_upload_mb,
        )

    @property
    def url(self) -> str:
        return f"http://{config.connect_host(self.host)}:{self.port}"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.address",
            self.host or "127.0.0.1",  # never Streamlit's default of every interface
            "--server.port",
            str(self.port),
            "--server.headless",
            "true",
            "--server.fileWatcherType",
            "none",
            "--server.runOnSave",
            "false",
            "--server.maxUploadSize",
            str(self.max_upload_mb),
            "--browser.gatherUsageStats",
            "false",
            "--client.toolbarMode",
            "minimal",  # no "Deploy" button: this studio is self-hosted
            # Cross-site protection: XSRF tokens on uploads, and "CORS protection" on (Streamlit's name for
            # refusing other origins, its WebSocket included); the Host check is frontend/guard.py.
            "--server.enableXsrfProtection",
            "true",
            "--server.enableCORS",
            "true",
            # Streamlit's default accent is red, which on a focused text box reads as "this is wrong".
            "--theme.primaryColor",
            PRIMARY_COLOR,
        ]

    def tunnel_hint(self, api_port: int) -> str:
        """The command that brings this studio and its API to a laptop, for the start-up output."""
        try:
            user, host = getpass.getuser(), socket.getfqdn()
        except (OSError, KeyError):
            user, host = "user", "this-host"
        return (
            f"From your computer, through an SSH tunnel (then open http://localhost:{self.port}):\n"
            f"  ssh -N -L {self.port}:127.0.0.1:{self.port} -L {api_port}:127.0.0.1:{api_port} {user}@{host}"
        )

    def _env(self) -> dict[str, str]:
        env = {**os.environ, **self.extra_env, "AVATAR_API_URL": self.api_url}
        if self.api_key:
            env["AVATAR_API_KEY"] = self.api_key
        return env

    def _watch(self) -> None:
        delay = FIRST_DELAY_S
        while not self._stop.is_set():
            started = time.monotonic()
            with self._lock:
                if self._stop.is_set():
                    return
                self.proc = subprocess.Popen(self.command(), env=self._env(), cwd=APP.parent.parent)
            code = self.proc.wait()
            if self._stop.is_set():
                return
            self.restarts += 1
            delay = restart_delay(delay, time.monotonic() - started)  # the workers' policy
            print(f"studio exited with {code}; restarting in {delay:.0f}s", file=sys.stderr, flush=True)
            self._stop.wait(delay)

    def start(self) -> Studio:
        self._thread = threading.Thread(target=self._watch, name="studio", daemon=True)
        self._thread.start()
        return self

    def stop(self, grace_s: float = 10.0) -> None:
        with self._lock:
            self._stop.set()
            proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=grace_s)
