"""The ``transcribe`` job: one recording's transcript, per channel.

Payload ``{"recording_id": "<id>"}`` (enqueued with key ``transcribe:<id>`` when
a recording is sealed, or by ``callvault analytics backfill``). Failures no
retry can fix — the recording deleted meanwhile, a missing or corrupt model, a
payload that names no recording, an archive that cannot be decoded — end the job as failed with the reason
(:class:`JobFailed`); anything else (the catalog briefly away) is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from callvault.asr.port import ModelUnavailable
from callvault.jobs.port import JobFailed, JobHandler, Progress
from callvault.services.context import ServiceContext
from callvault.services.transcription import RecordingGone, Untranscribable
from callvault.services.transcription_jobs import KIND

__all__ = ["KIND", "transcribe_handler"]
_MAX_ID = 36


def transcribe_handler(ctx: ServiceContext) -> JobHandler:
    def run(payload: Mapping[str, Any], progress: Progress) -> None:
        recording_id = payload.get("recording_id")
        if not isinstance(recording_id, str) or not 0 < len(recording_id) <= _MAX_ID:
            raise JobFailed("payload: recording_id must be a recording id")
        if progress.cancelled():
            raise JobFailed("cancelled before it started")
        try:
            ctx.transcription.transcribe(recording_id, progress)
        except (RecordingGone, ModelUnavailable, Untranscribable) as exc:
            raise JobFailed(exc.message) from None
        progress(1.0)

    return run
