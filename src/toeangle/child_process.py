"""Worker processes that end with their parent, even when the parent is killed with SIGKILL.

Without this, a service or batch run killed with ``kill -9`` leaves its workers (hundreds of
MB each, models loaded) running for ever. Two mechanisms: on Linux the kernel sends the worker
SIGKILL when its parent dies (prctl PR_SET_PDEATHSIG), and everywhere a watchdog thread ends
the worker within a second of its parent's end (multiprocessing's parent sentinel, or the
parent pid changing).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing
import os
import signal
import sys
import threading

PR_SET_PDEATHSIG = 1
WATCH_EVERY_S = 1.0
EXIT_CODE = 70  # EX_SOFTWARE: not a normal end


def exit_with_parent() -> None:
    """Call first thing in a worker process (a pool initializer, a worker's main function)."""
    parent_pid = os.getppid()
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except OSError:  # pragma: no cover - no libc: the watchdog alone
            pass
    parent = multiprocessing.parent_process()
    if _parent_gone(parent, parent_pid):  # died before prctl took effect
        os._exit(EXIT_CODE)
    threading.Thread(target=_watch, args=(parent, parent_pid), name="parent-watchdog", daemon=True).start()


def _parent_gone(parent, parent_pid: int) -> bool:
    return os.getppid() != parent_pid or (parent is not None and not parent.is_alive())


def _watch(parent, parent_pid: int) -> None:
    while True:
        if parent is not None:
            parent.join(WATCH_EVERY_S)  # returns at once when the parent's sentinel closes
        else:
            threading.Event().wait(WATCH_EVERY_S)
        if _parent_gone(parent, parent_pid):
            os._exit(EXIT_CODE)
