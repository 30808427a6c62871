"""Child processes die with the server, however the server ends.

A clean stop shuts the capture and render workers down in order, but after a
``kill -9`` (or the OOM killer, or a crash in C code) nothing runs in the
server any more. The workers would then live on: a render worker blocks for
ever on a call queue whose write end it holds itself, and the resource
tracker lives as long as any of them. Each such orphan holds hundreds of MB.

So every worker watches the server from a daemon thread, on a pidfd that
becomes readable when the server process exits (Linux ≥ 5.3; a one-second
liveness poll elsewhere), and kills itself then. A direct child of the
server also asks the kernel for ``SIGKILL`` on its parent's death
(``PR_SET_PDEATHSIG``), which does not need the watcher thread to get the GIL.
Render workers are children of the fork server, not of the server, so only
the pidfd watcher covers them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import sys
import threading

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
_watched: int | None = None


def watch(server_pid: int) -> None:
    """Kill this process as soon as process ``server_pid`` has exited (from any cause)."""
    global _watched
    if server_pid == os.getpid():
        return  # running inside the server itself (thread executors in tests)
    _watched = server_pid
    if os.getppid() == server_pid:
        _parent_death_signal()
    try:
        fd: int | None = os.pidfd_open(server_pid)
    except ProcessLookupError:
        _die()
        return
    except (OSError, AttributeError):
        fd = None  # no pidfd support: poll instead
    threading.Thread(target=_wait, args=(server_pid, fd), name="server-lifeline", daemon=True).start()


def _restart_after_fork() -> None:
    # A forked child has no threads but the one that forked: watch again.
    if _watched is not None:
        watch(_watched)


def _parent_death_signal() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        log.debug("PR_SET_PDEATHSIG unavailable")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait(pid: int, fd: int | None) -> None:
    if fd is not None:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not poller.poll():
            pass
    else:
        while _alive(pid):
            threading.Event().wait(1.0)
    _die()


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


os.register_at_fork(after_in_child=_restart_after_fork)
