"""Which handler runs each kind of job; every worker process builds this from its own context.

One entry per job kind. A handler is built per worker process from that
process's :class:`ServiceContext` (its own catalog engine and vault), and must be
idempotent: a job whose worker died is run again.
"""

from __future__ import annotations

from callvault.jobs.port import JobHandler
from callvault.runtime.jobs import analyse, index_transcript, selftest, transcribe
from callvault.services.context import ServiceContext


def job_handlers(ctx: ServiceContext) -> dict[str, JobHandler]:
    """Every job kind this build can run, bound to ``ctx``."""
    handlers: dict[str, JobHandler] = {}
    handlers[transcribe.KIND] = transcribe.transcribe_handler(ctx)
    handlers[analyse.KIND] = analyse.analyse_handler(ctx)
    handlers[index_transcript.KIND] = index_transcript.index_transcript_handler(ctx)
    handlers[selftest.KIND] = selftest.selftest_handler(ctx)  # built-in diagnostic
    return handlers
