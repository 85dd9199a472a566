"""A supervised worker must not outlive its supervisor.

If `avatar serve` is killed with SIGKILL it cannot stop its workers; an orphaned worker would keep claiming jobs
and, after a restart, a second worker would load a second copy of the model onto the same GPU. Two lines of
defence, both ending in ``on_lost``, called on a thread of its own (the worker requeues its job and exits at
once, without waiting for the denoising step in progress):

* Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``): the kernel signals the worker the moment its parent
  exits, however it died;
* a watcher thread that compares the parent pid with the supervisor's (``AVATAR_SUPERVISOR_PID``) every second —
  covering the window before prctl took effect and systems without it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

from loguru import logger

LOST_SIGNAL = signal.SIGUSR1
_PR_SET_PDEATHSIG = 1
CHECK_EVERY_S = 1.0


def supervisor_pid() -> int | None:
    value = os.environ.get("AVATAR_SUPERVISOR_PID", "")
    return int(value) if value.isdigit() else None


def watch_supervisor(on_lost: Callable[[], None]) -> bool:
    """Call ``on_lost`` (on a watcher thread) as soon as the supervisor is gone.

    Returns False when this worker has no supervisor (started alone with `avatar worker`)."""
    expected = supervisor_pid()
    if expected is None:
        return False
    lost = threading.Event()
    # The handler only sets a flag: the main thread may be inside a database write when the signal lands.
    signal.signal(LOST_SIGNAL, lambda *_: lost.set())
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(LOST_SIGNAL), 0, 0, 0) != 0:
                logger.warning("prctl(PR_SET_PDEATHSIG) failed (errno {}); polling only", ctypes.get_errno())
        except (OSError, AttributeError):
            logger.warning("prctl is not available; watching the supervisor by polling only")

    def watch() -> None:
        while not lost.wait(CHECK_EVERY_S) and os.getppid() == expected:
            pass
        logger.warning("worker: supervisor {} is gone", expected)
        on_lost()

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
    return True
