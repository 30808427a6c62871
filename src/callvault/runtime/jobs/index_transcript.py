"""The ``index_transcript`` job: (re)index one recording's stored transcript for text search.

Payload ``{"recording_id": "<id>"}``. New transcripts are indexed as soon as
``transcript.ready`` is published, without a job; this kind is for a backfill,
or to repair a recording whose indexing failed (the event's subscriber only
logs). Indexing replaces the recording's rows whole, so a retried job writes
its output once. A recording without a stored transcript, or whose audio is
gone, fails the job with the reason (:class:`JobFailed`): retrying cannot fix it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callvault.jobs.port import JobFailed, JobHandler, Progress
from callvault.services.context import ServiceContext

KIND = "index_transcript"
_MAX_ID = 36


def job_key(recording_id: str) -> str:
    return f"{KIND}:{recording_id}"


def index_transcript_handler(ctx: ServiceContext) -> JobHandler:
    def run(payload: Mapping[str, Any], progress: Progress) -> None:
        recording_id = payload.get("recording_id")
        if not isinstance(recording_id, str) or not 0 < len(recording_id) <= _MAX_ID:
            raise JobFailed("payload: recording_id must be a recording id")
        if progress.cancelled():
            raise JobFailed("cancelled before it started")
        transcript = ctx.transcripts.get(recording_id)
        if transcript is None:
            raise JobFailed(f"recording {recording_id} has no stored transcript")
        if not ctx.transcript_index.index(recording_id, transcript):
            raise JobFailed(f"recording {recording_id} no longer has its audio")
        progress(1.0)

    return run
