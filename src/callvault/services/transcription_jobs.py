"""Queuing transcriptions: one ``transcribe`` job per sealed recording, and its state.

New recordings: :class:`TranscribeOnSeal` hears ``recording.sealed`` inside the
sealing transaction and enqueues the job in that same transaction
(``JobQueue.enqueue_in``), so a sealed recording always has its job and a
rolled-back seal has none. Old recordings: :func:`enqueue_transcriptions`
(``callvault analytics backfill``). The job's idempotency key
(``transcribe:<recording id>``) makes both safe to repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.db.transcript_models import RecordingTranscript
from callvault.jobs.port import Job, JobQueue
from callvault.jobs.store import JobStore
from callvault.services.events import DomainEvent

KIND = "transcribe"


def job_key(recording_id: str) -> str:
    """The idempotency key: one transcription job per recording."""
    return f"{KIND}:{recording_id}"


class TranscribeOnSeal:
    """A transactional subscriber: ``recording.sealed`` with audio → a ``transcribe`` job."""

    def __init__(self, jobs: JobQueue) -> None:
        self._jobs = jobs

    def handle_in(self, session: Session, event: DomainEvent) -> None:
        recording_id = _sealed_with_audio(event)
        if recording_id is not None:
            self._jobs.enqueue_in(
                session, KIND, {"recording_id": recording_id}, key=job_key(recording_id), subject=recording_id
            )

    def handle(self, event: DomainEvent) -> None:
        # Published after a commit (not the sealing path today): enqueue on its own.
        recording_id = _sealed_with_audio(event)
        if recording_id is not None:
            self._jobs.enqueue(
                KIND, {"recording_id": recording_id}, key=job_key(recording_id), subject=recording_id
            )


def _sealed_with_audio(event: DomainEvent) -> str | None:
    recording_id = event.data.get("recording_id")
    if event.type != "recording.sealed" or not event.data.get("format") or not isinstance(recording_id, str):
        return None
    return recording_id


def job_state(catalog: Catalog) -> Callable[[str], str | None]:
    """``recording id -> "queued" | "running" | "dead: <reason>" ... | None`` (no job)."""
    store = JobStore(catalog)

    def state_of(recording_id: str) -> str | None:
        jobs = store.list(kind=KIND, subject=recording_id, limit=1)
        if not jobs:
            return None
        job = jobs[0]
        return f"{job.state}: {job.error}" if job.error and job.state != "succeeded" else job.state

    return state_of


def untranscribed(catalog: Catalog, started_from: datetime | None, started_to: datetime | None) -> list[str]:
    """Ids of sealed recordings with audio and no transcript, started in the window, oldest first."""
    query = (
        select(Recording.id)
        .outerjoin(RecordingTranscript, RecordingTranscript.recording_id == Recording.id)
        .where(
            RecordingTranscript.recording_id.is_(None),
            Recording.status != "recording",
            Recording.deleted_at.is_(None),
            Recording.wrapped_key.is_not(None),
            Recording.object_key.is_not(None),
        )
        .order_by(Recording.started_at, Recording.id)
    )
    if started_from is not None:
        query = query.where(Recording.started_at >= started_from)
    if started_to is not None:
        query = query.where(Recording.started_at < started_to)
    with catalog.read() as session:
        return list(session.scalars(query))


def enqueue_transcriptions(jobs: JobQueue, recording_ids: list[str]) -> Iterator[Job]:
    """Enqueue one job per recording. A recording's job that already exists is kept if queued or
    running, and re-queued if it failed, died or was cancelled (the operator fixed the cause)."""
    for recording_id in recording_ids:
        job = jobs.enqueue(
            KIND, {"recording_id": recording_id}, key=job_key(recording_id), subject=recording_id
        )
        if job.state in ("failed", "dead", "cancelled"):
            job = jobs.retry(job.id) or job
        yield job
