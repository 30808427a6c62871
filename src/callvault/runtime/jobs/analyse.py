"""The ``analyse`` job: one recording's talk metrics, category hits, adherence and sentiment.

Payload ``{"recording_id": "<id>"}``: enqueued (key ``analyse:<id>``) in the
transaction that stores the recording's transcript, or by a backfill. A recording without a transcript or without its
audio any more fails the job with the reason (:class:`JobFailed`): retrying
cannot fix it. Analysing twice replaces the first result, so a retried job
writes its output once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callvault.errors import NotFound
from callvault.jobs.port import JobFailed, JobHandler, Progress
from callvault.services.call_insights import ANALYSE_JOB
from callvault.services.context import ServiceContext

KIND = ANALYSE_JOB
_MAX_ID = 36


def analyse_handler(ctx: ServiceContext) -> JobHandler:
    def run(payload: Mapping[str, Any], progress: Progress) -> None:
        recording_id = payload.get("recording_id")
        if not isinstance(recording_id, str) or not 0 < len(recording_id) <= _MAX_ID:
            raise JobFailed("payload: recording_id must be a recording id")
        if progress.cancelled():
            raise JobFailed("cancelled before it started")
        try:
            ctx.insights.analyse_recording(recording_id)
        except NotFound as exc:
            raise JobFailed(exc.message) from None
        progress(1.0)

    return run
