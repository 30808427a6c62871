"""Admission control: refuse new calls while the renderer is too far behind to record them whole.

Capture never falls behind (it only appends to journals), but rendering and
sealing can: every call costs a fixed amount of render CPU (decoding, mixing,
Opus encoding), and a core that takes more calls than it can render builds a
queue that grows without bound. A call accepted then is captured, but its
recording is sealed minutes after hang-up, or, if the recorder stops, left
to crash recovery. An SBC with several recorders is better served by a 503
and a ``Retry-After``: it fails the call over to a recorder with headroom.

The measure is the **render backlog in seconds**: the age of the oldest render
job (call-time step, hang-up tail, crash recovery) that was handed to the
render workers and has not finished. Calls deliver audio in real time, so a
job that waited ``s`` seconds means the renderer is ``s`` seconds of audio
behind; in a recorder with headroom it stays under a second whatever the
load. The render pool reports when each job is submitted and done
(:meth:`Admission.submitted`, :meth:`Admission.finished`), nothing else is
needed, and the check is O(1) amortised: jobs finish roughly in submission
order, so the oldest one is the first of an insertion-ordered dict.

Hysteresis: new INVITEs are refused once the backlog exceeds
``CALLVAULT_ADMISSION_MAX_BACKLOG_SECONDS`` and accepted again only when it
is under half of that, so a recorder at its limit does not flap between
accepting and refusing on every job.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

BACKLOG_SECONDS = Gauge(
    "callvault_admission_backlog_seconds",
    "Age in seconds of the oldest render job not finished (how far the renderer is behind).",
)
REFUSING = Gauge(
    "callvault_admission_refusing",
    "1 while new INVITEs are refused (503) because the render backlog is above its limit.",
)
REFUSED = Counter(
    "callvault_admission_refused",
    "New recording sessions refused with 503 because the render backlog was above its limit.",
)

# Bounds of the Retry-After we suggest: the backlog drains at most in real time.
MIN_RETRY_AFTER = 5
MAX_RETRY_AFTER = 120


class Admission:
    """The render backlog, and whether it allows a new call."""

    def __init__(self, max_backlog: float, clock: Callable[[], float] = time.monotonic) -> None:
        if max_backlog <= 0:
            raise ValueError("the admission backlog limit must be positive")
        self.max_backlog = max_backlog
        self._clock = clock
        self._pending: dict[int, float] = {}  # job token -> submission time, oldest first
        self._tokens = itertools.count()
        self._refusing = False

    # -- fed by the render pool ------------------------------------------------

    def submitted(self) -> int:
        token = next(self._tokens)
        self._pending[token] = self._clock()
        return token

    def finished(self, token: int) -> None:
        self._pending.pop(token, None)

    # -- read by the SIP server and /metrics ------------------------------------

    @property
    def pending_jobs(self) -> int:
        return len(self._pending)

    def backlog(self) -> float:
        """Seconds the oldest unfinished render job has waited (0 with none)."""
        if not self._pending:
            return 0.0
        oldest = next(iter(self._pending.values()))
        return max(0.0, self._clock() - oldest)

    def refusing(self) -> bool:
        """Whether a new call is refused now; updates the hysteresis and the gauges."""
        backlog = self.backlog()
        BACKLOG_SECONDS.set(backlog)
        if not self._refusing and backlog > self.max_backlog:
            self._refusing = True
            log.warning(
                "render backlog %.1f s is above %.1f s: new calls are refused until it is under %.1f s",
                backlog,
                self.max_backlog,
                self.max_backlog / 2,
            )
        elif self._refusing and backlog < self.max_backlog / 2:
            self._refusing = False
            log.info("render backlog %.1f s: new calls are accepted again", backlog)
        REFUSING.set(1 if self._refusing else 0)
        return self._refusing

    def refuse(self) -> int | None:
        """None when a new call may be taken; else the Retry-After seconds to answer with (counted)."""
        if not self.refusing():
            return None
        REFUSED.inc()
        return min(MAX_RETRY_AFTER, max(MIN_RETRY_AFTER, math.ceil(self.backlog())))
