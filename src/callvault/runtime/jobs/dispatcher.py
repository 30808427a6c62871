"""The Celery dispatcher sweep: sends again the messages of due jobs a broker may have lost.

Runs as a thread in ``callvault serve`` (with ``CALLVAULT_JOB_QUEUE=celery``) and
in every ``callvault worker``; several at once only send a few harmless
duplicates (a job is claimed once, see :mod:`callvault.jobs.celery_queue`).
"""

from __future__ import annotations

import logging
import threading

from callvault.jobs.celery_queue import CeleryJobQueue

log = logging.getLogger(__name__)

SWEEP_INTERVAL_S = 5.0


class Dispatcher:
    def __init__(self, queue: CeleryJobQueue, interval_s: float = SWEEP_INTERVAL_S) -> None:
        self.queue = queue
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-dispatcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                sent = self.queue.dispatch_due()
            except Exception as exc:  # broker or catalog briefly away: the next sweep tries again
                log.warning("job dispatcher: sweep failed (%s)", exc)
                continue
            if sent:
                log.info("job dispatcher: sent %d job message(s) again", sent)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.interval_s + 5)
