"""Reconciliation of undecided call records inside ``callvault serve``.

Call records often arrive before their calls are over, or before a
recording is finalised; they stay ``pending`` until the recording is sealed
or the grace time (``CALLVAULT_ASSURANCE_GRACE_SECONDS``) after the call has
passed. Every ``CALLVAULT_ASSURANCE_INTERVAL`` seconds the records still
``pending`` or ``missing`` are reconciled again, in a worker thread, so a late
recording is found and a missing must-record call raises its alert without
anyone asking. A failing round is logged and retried at the next interval.
"""

from __future__ import annotations

from callvault.runtime.periodic import PeriodicRound
from callvault.services.access import Principal
from callvault.services.context import ServiceContext


class AssuranceSweeper(PeriodicRound):
    name = "assurance reconciliation"

    def __init__(self, ctx: ServiceContext, interval: float) -> None:
        super().__init__(interval)
        self._ctx = ctx

    def run_round(self) -> None:
        self._ctx.assurance.reconcile(Principal.system(), undecided_only=True)
