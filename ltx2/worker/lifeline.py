"""A supervised worker must not outlive its supervisor.

If `avatar serve` is killed with SIGKILL it cannot stop its workers; an orphaned worker would keep claiming jobs
and, after a restart, a second worker would load a second copy of the model onto the same GPU. Two lines of
defence, both ending in ``on_lost``, called on a thread of its own (the worker requeues its job and exits at
once, without waiting for the denoising step in progress):

* Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``): the kernel signals the worker the moment its parent
  exits, however it died;
* a watcher thread that compares the parent pid with the supervisor's (``AVATAR_SUPERVISOR_PID``) 4× a second —
  covering the window before prctl took effect and systems without it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from loguru import logger

LOST_SIGNAL = signal.SIGUSR1
_PR_SET_PDEATHSIG = 1
CHECK_EVERY_S = 0.25


def supervisor_pid() -> int | None:
    value = os.environ.get("AVATAR_SUPERVISOR_PID", "")
    return int(value) if value.isdigit() else None


def watch_supervisor(on_lost: Callable[[], None]) -> bool:
    """Call ``on_lost`` (on a watcher thread) as soon as the supervisor is gone.

    Returns False when this worker has no supervisor (started alone with `avatar worker`)."""
    expected = supervisor_pid()
    if expected is None:
        return False
    lost = [False]
    # The handler only sets a flag, taking no lock: it runs in the main thread between two bytecodes, possibly
    # inside another handler or while that thread holds a lock (an Event here once deadlocked the worker).
    signal.signal(LOST_SIGNAL, lambda *_: lost.__setitem__(0, True))
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, int(LOST_SIGNAL), 0, 0, 0) != 0:
                logger.warning("prctl(PR_SET_PDEATHSIG) failed (errno {}); polling only", ctypes.get_errno())
        except (OSError, AttributeError):
            logger.warning("prctl is not available; watching the supervisor by polling only")

    def watch() -> None:
        while not lost[0] and os.getppid() == expected:
            time.sleep(CHECK_EVERY_S)
        logger.warning("worker: supervisor {} is gone", expected)
        on_lost()

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
    return True
