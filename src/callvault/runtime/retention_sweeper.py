"""The retention sweep inside ``callvault serve``: every ``CALLVAULT_RETENTION_INTERVAL`` seconds.

Each round, in a worker thread (the catalog and the vault are blocking I/O):
finish deletions a previous run left pending, delete what is due, then start a
new key epoch if the current one is over (:mod:`callvault.services.key_epochs`).
A failing round is logged and retried at the next interval; it never stops the
server. The first round runs shortly after start, so a server that restarts
often still sweeps.
"""

from __future__ import annotations

import logging

from callvault.runtime.periodic import PeriodicRound
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

log = logging.getLogger(__name__)

FIRST_ROUND_DELAY = 5.0


class RetentionSweeper(PeriodicRound):
    name = "retention sweep"

    def __init__(self, ctx: ServiceContext, interval: float, first_delay: float = FIRST_ROUND_DELAY) -> None:
        super().__init__(interval, first_delay)
        self._ctx = ctx

    def run_round(self) -> None:
        result = self._ctx.retention.run(Principal.system())
        if result["count"] or result["resumed"]:
            log.info(
                "retention sweep: %d deleted (%d bytes), %d held, %d resumed",
                result["count"],
                result["bytes"],
                result["held"],
                result["resumed"],
            )
        self._ctx.key_epochs.rotate_if_due()
