"""The state folder and the logs, made safe before a process touches them.

* A 0-byte SQLite file is refused: SQLite would happily open it as an empty store while the videos it described
  sit on disk (a failed copy or restore, a full disk), and the server would then treat them as strangers.
* outputs/.state (database, webhook secret, uploads, face profiles) is 0700 and avatar.db 0600: the photos and
  voices people upload are personal data, and other users of a shared GPU box must not read them.
* Logs: tracebacks are printed without variable values (loguru's ``diagnose`` would print form fields and the
  first bytes of uploaded photos), and API keys put in a query string are masked in uvicorn's access log.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from sqlalchemy.engine import make_url

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def sqlite_path(db_url: str) -> Path | None:
    url = make_url(db_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def check_database(db_url: str) -> None:
    """Raise SystemExit with a clear message when the SQLite file exists but is empty."""
    path = sqlite_path(db_url)
    if path is not None and path.is_file() and path.stat().st_size == 0:
        raise SystemExit(
            f"refusing to start: the job database {path} is an empty (0-byte) file, so every job, profile and "
            "upload record is missing while their files may still be on disk. Restore it from a backup, or "
            "delete it to start with an empty store."
        )


def secure_state(settings) -> None:
    """Make the state folders private (0700) and the SQLite files 0600; safe to call at any time."""
    for folder in (settings.state_dir, settings.uploads_dir):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(PRIVATE_DIR)
    path = sqlite_path(settings.db_url)
    if path is not None:
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file.exists():
                file.chmod(PRIVATE_FILE)


_SECRET_PARAM = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access_token|auth|authorization)=)[^&\s\"]*")


class _MaskKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_SECRET_PARAM.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


# What clients poll: a job, a list of jobs or trainings, health, metrics, the workspace (not downloads or streams).
_POLLED = re.compile(
    r"/(health|health-check|metrics|training-status|workspace-status|status/[^/?]+|training-progress/[^/?]+"
    r"|v1/(predictions|trainings)(/[^/?]+)?|v1/(workers|limits|profiles|trash))(\?|$)"
)


class _QuietPolls(logging.Filter):
    """Drop the access line of a successful poll. 50 pollers at 1 Hz wrote 4 million lines a day, and writing the
    line was a fifth of the API's CPU per status read (py-spy under bench/api_load.py). Errors, refusals and
    every request that changes something are still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args  # uvicorn's: client, method, path with query, HTTP version, status code
        if isinstance(args, tuple) and len(args) == 5:
            method, path, status = args[1], args[2], args[4]
            if method in ("GET", "HEAD") and isinstance(status, int) and status < 400 and isinstance(path, str):
                return _POLLED.match(path) is None
        return True


_configured = False


def configure_logging(log_polls: bool = False) -> None:
    """Tracebacks without local variables; no key in the access log; successful polls not logged unless
    `log_polls` (AVATAR_LOG_POLLS). Idempotent."""
    global _configured
    if _configured:
        return
    from loguru import logger

    logger.remove()
    logger.add(sys.stderr, diagnose=False, backtrace=False)
    access = logging.getLogger("uvicorn.access")
    if not log_polls:
        access.addFilter(_QuietPolls())
    access.addFilter(_MaskKeys())
    _configured = True
