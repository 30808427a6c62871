"""Run one claimed job: its handler, a heartbeat that keeps the lease, and the outcome.

The same runner serves the embedded workers and the Celery task, so a job ends
the same way whichever transport brought it: succeeded; cancelled (an operator
asked, the handler saw ``Progress.cancelled()``); failed with a retry after an
exponential backoff; or dead with its reason (``JobFailed``, attempts used up,
or a kind this build has no handler for). Every ending is written only under
the claim's token, so a job whose lease was lost to another worker is never
finished twice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from callvault.jobs.port import JobFailed, JobHandler, JobState
from callvault.jobs.store import Claim, JobStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Wait ``base_s`` before the first retry, doubled after each failure, at most ``max_s``."""

    base_s: float = 5.0
    max_s: float = 600.0

    def delay(self, attempts: int) -> float:
        return float(min(self.max_s, self.base_s * 2 ** max(0, attempts - 1)))


class _Progress:
    """The handler's view: report a fraction, learn whether to stop."""

    def __init__(self) -> None:
        self.fraction: float | None = None
        self.stop = threading.Event()  # cancelled by an operator, or the claim was lost

    def __call__(self, fraction: float) -> None:
        self.fraction = min(1.0, max(0.0, float(fraction)))

    def cancelled(self) -> bool:
        return self.stop.is_set()


class _Heartbeat(threading.Thread):
    """Extends the claim's lease while the handler runs, and carries progress and cancels."""

    def __init__(self, store: JobStore, claim: Claim, progress: _Progress, lease_s: float) -> None:
        super().__init__(name=f"job-{claim.job.id}-heartbeat", daemon=True)
        self.store, self.claim, self.progress, self.lease_s = store, claim, progress, lease_s
        self.done = threading.Event()
        self.cancel_requested = False
        self.lost = False

    def run(self) -> None:
        interval = min(2.0, max(0.05, self.lease_s / 3))
        while not self.done.wait(interval):
            self.beat()

    def beat(self) -> None:
        try:
            owned, cancel = self.store.beat(self.claim, self.progress.fraction, self.lease_s)
        except Exception:  # the catalog is briefly unreachable: the lease has slack, try again
            log.warning("job %d: heartbeat failed", self.claim.job.id, exc_info=True)
            return
        self.cancel_requested |= cancel
        self.lost |= not owned
        if cancel or not owned:
            self.progress.stop.set()


class JobRunner:
    """Runs claimed jobs with the handlers of this process."""

    def __init__(
        self, store: JobStore, handlers: Mapping[str, JobHandler], lease_s: float, retry: RetryPolicy
    ) -> None:
        self.store, self.handlers, self.lease_s, self.retry = store, handlers, lease_s, retry

    def run(self, claim: Claim) -> JobState | None:
        """Run ``claim``'s job to an outcome; the state written, or None when the claim was lost."""
        job = claim.job
        handler = self.handlers.get(job.kind)
        if handler is None:
            return self._end(claim, "dead", f"no handler for job kind {job.kind!r} in this build")
        progress = _Progress()
        heartbeat = _Heartbeat(self.store, claim, progress, self.lease_s)
        heartbeat.start()
        failure: BaseException | None = None
        try:
            handler(job.payload, progress)
        except Exception as exc:
            failure = exc
        finally:
            heartbeat.done.set()
            heartbeat.join()
        heartbeat.beat()  # the last word on a cancel that came while the handler finished
        if heartbeat.lost:
            log.warning(
                "job %d (%s): its lease was lost to another worker; outcome dropped", job.id, job.kind
            )
            return None
        if heartbeat.cancel_requested:
            return self._end(claim, "cancelled", "cancelled by an operator")
        if failure is None:
            return self._end(claim, "succeeded", None)
        return self._failed(claim, failure)

    def _failed(self, claim: Claim, failure: BaseException) -> JobState | None:
        job = claim.job
        reason = f"{type(failure).__name__}: {failure}" if str(failure) else type(failure).__name__
        if isinstance(failure, JobFailed):
            return self._end(claim, "dead", str(failure) or reason)
        if job.attempts >= job.max_attempts:
            return self._end(claim, "dead", f"gave up after {job.attempts} attempts: {reason}")
        delay = self.retry.delay(job.attempts)
        log.warning(
            "job %d (%s) attempt %d failed, retry in %.0f s: %s",
            job.id,
            job.kind,
            job.attempts,
            delay,
            reason,
        )
        retry_at = self.store.clock() + timedelta(seconds=delay)
        return "failed" if self.store.fail(claim, reason, retry_at) else None

    def _end(self, claim: Claim, state: JobState, error: str | None) -> JobState | None:
        if state == "dead":
            log.error("job %d (%s) is dead: %s", claim.job.id, claim.job.kind, error)
        return state if self.store.finish(claim, state, error) else None
