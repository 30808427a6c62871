"""Analyse a transcribed call: talk metrics, category hits, script adherence, sentiment.

A new transcript is analysed by the ``analyse`` job, enqueued in the very
transaction that stores the transcript (``transcript.ready``): it exists exactly
when the transcript does, and a worker killed mid-job leaves it to be retried.
:meth:`CallInsights.analyse_recording` is also what a backfill or a re-run after
categories change calls. Voice activity comes from the archive's own channels (its waveform
peaks, cached by :class:`~callvault.services.waveform.WaveformService`): agent
left, customer right. A mixed or mono archive has no per-side audio, so the
transcript's word times stand in. Hold time comes from the recording's hold and
resume events.

The result replaces the call's previous analytics in one transaction that
first checks the recording still has its audio, so a call deleted meanwhile
gets nothing written; the deletion and destroy-audio transactions drop them
(:func:`~callvault.services.insight_store.forget_insights`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import Recording, RecordingEvent
from callvault.db.transcript_models import RecordingTranscript
from callvault.errors import IntegrityError, InvalidInput, KeyUnavailable, NotFound
from callvault.jobs.port import JobQueue
from callvault.media.peaks import Peaks
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.events import DomainEvent
from callvault.services.insight_store import save_insight
from callvault.services.phrase_categories import PhraseCategories
from callvault.services.waveform import WaveformService
from callvault.speech.phrases import adherence, spot
from callvault.speech.sentiment import score_segments, summarise
from callvault.speech.talk_metrics import (
    Interval,
    TalkMetrics,
    activity_from_levels,
    activity_from_words,
    talk_metrics,
)
from callvault.speech.transcript import SPEAKERS, Speaker, Transcript

log = logging.getLogger(__name__)
READY_EVENT = "transcript.ready"
ANALYSE_JOB = "analyse"
MAX_REANALYSE = 50_000
TranscriptSource = Callable[[str], Transcript | None]


class CallInsights:
    def __init__(
        self,
        catalog: Catalog,
        waveforms: WaveformService,
        categories: PhraseCategories,
        transcript_of: TranscriptSource,
        jobs: JobQueue,
        access_log: AccessLog,
    ) -> None:
        self._log = access_log
        self._catalog = catalog
        self._waveforms = waveforms
        self._categories = categories
        self._transcript_of = transcript_of
        self._jobs = jobs

    def analyse_recording(self, recording_id: str) -> TalkMetrics:
        """Analyse a recording from its stored transcript (NotFound when it has none)."""
        transcript = self._transcript_of(recording_id)
        if transcript is None:
            raise NotFound(f"recording {recording_id} has no transcript")
        return self.analyse(recording_id, transcript)

    def analyse(self, recording_id: str, transcript: Transcript) -> TalkMetrics:
        """Compute and store the call's analytics from ``transcript`` and its archive."""
        duration, holds, stereo = self._recording_facts(recording_id)
        source = "transcript"
        activity: dict[Speaker, Sequence[Interval]] = {
            side: activity_from_words(transcript.channel(side)) for side in SPEAKERS
        }
        peaks = self._peaks(recording_id) if stereo else None
        if peaks is not None and peaks.channels == 2:
            lanes = peaks.lanes()
            source = "audio"
            activity = {
                "agent": activity_from_levels(lanes[0], peaks.bucket_seconds),
                "customer": activity_from_levels(lanes[1], peaks.bucket_seconds),
            }
            duration = duration or peaks.duration_seconds
        duration = duration or max((w.end for c in transcript.channels for w in c.words), default=0.0)
        words: dict[Speaker, int] = {c.speaker: len(c.words) for c in transcript.channels}
        metrics = talk_metrics(duration, activity, holds, words)
        categories = self._categories.definitions()
        hits = spot(transcript, categories)
        with self._catalog.write() as session:
            recording = session.get(Recording, recording_id, with_for_update=True)
            if recording is None or recording.deleted_at is not None or recording.wrapped_key is None:
                raise NotFound(f"recording {recording_id} no longer has audio")
            save_insight(
                session,
                recording_id,
                source,
                metrics,
                summarise(transcript, duration),
                score_segments(transcript),
                hits,
                adherence(hits, categories),
            )
        return metrics

    def _peaks(self, recording_id: str) -> Peaks | None:
        """The archive's per-channel levels; None when it cannot be decoded (the words stand in)."""
        try:
            return self._waveforms.compute(recording_id)
        except (IntegrityError, KeyUnavailable) as exc:
            log.warning("recording %s: talk metrics from word times: %s", recording_id, exc.message)
            return None

    def _recording_facts(self, recording_id: str) -> tuple[float, list[Interval], bool]:
        """The call's duration, its hold intervals and whether agent and customer have their own channels."""
        with self._catalog.read() as session:
            recording = session.get(Recording, recording_id)
            if recording is None or recording.deleted_at is not None:
                raise NotFound(f"recording {recording_id} not found")
            events = session.scalars(
                select(RecordingEvent)
                .where(
                    RecordingEvent.recording_id == recording_id, RecordingEvent.kind.in_(("hold", "resume"))
                )
                .order_by(RecordingEvent.offset_seconds)
            ).all()
            duration = recording.duration_seconds or 0.0
            stereo = recording.channels == 2 and not recording.mixed and recording.object_key is not None
            marks = [(e.kind, e.offset_seconds, str((e.data or {}).get("stream", ""))) for e in events]
        return duration, hold_intervals(marks, duration), stereo

    def reanalyse(self, principal: Principal, started_from: datetime, started_to: datetime) -> int:
        """Enqueue the analysis again for every transcribed call started in the range (after
        categories change); returns how many. QA leads only; at most MAX_REANALYSE a request."""
        require(principal, Action.QA_FORM_MANAGE)
        if started_to <= started_from:
            raise InvalidInput("'to' must be after 'from'")
        requested = datetime.now(UTC)
        with self._catalog.write() as session:
            ids = session.scalars(
                select(Recording.id)
                .join(RecordingTranscript, RecordingTranscript.recording_id == Recording.id)
                .where(
                    Recording.started_at >= started_from,
                    Recording.started_at < started_to,
                    Recording.deleted_at.is_(None),
                )
                .order_by(Recording.started_at)
                .limit(MAX_REANALYSE + 1)
            ).all()
            if len(ids) > MAX_REANALYSE:
                raise InvalidInput(f"more than {MAX_REANALYSE} calls in the range; ask for a shorter one")
            for recording_id in ids:
                self._jobs.enqueue_in(
                    session,
                    ANALYSE_JOB,
                    {"recording_id": recording_id},
                    key=reanalyse_key(recording_id, requested),
                    priority=-1,  # behind new calls
                )
        self._log.record(
            principal,
            "analytics_rerun",
            detail=f"{len(ids)} calls {started_from.isoformat()}..{started_to.isoformat()}",
        )
        return len(ids)

    # -- domain events ---------------------------------------------------------------------

    def handle_in(self, session: Session, event: DomainEvent) -> None:
        """A transcript being stored: enqueue its analysis in the same transaction."""
        recording_id = event.data.get("recording_id")
        if event.type == READY_EVENT and isinstance(recording_id, str):
            self._jobs.enqueue_in(
                session, ANALYSE_JOB, {"recording_id": recording_id}, key=job_key(recording_id)
            )

    def handle(self, event: DomainEvent) -> None:
        """A transcript announced outside a transaction (not done today): enqueue on its own."""
        recording_id = event.data.get("recording_id")
        if event.type == READY_EVENT and isinstance(recording_id, str):
            self._jobs.enqueue(ANALYSE_JOB, {"recording_id": recording_id}, key=job_key(recording_id))


def reanalyse_key(recording_id: str, requested_at: datetime) -> str:
    """A re-run's key: one per recording per request, so it runs even after the first analysis."""
    return f"{ANALYSE_JOB}:{recording_id}:{requested_at.strftime('%Y%m%dT%H%M%S.%f')}"


def job_key(recording_id: str) -> str:
    """One analysis per stored transcript (a transcript is written once per recording)."""
    return f"{ANALYSE_JOB}:{recording_id}"


def hold_intervals(marks: Sequence[tuple[str, float, str]], duration: float) -> list[Interval]:
    """Hold intervals from ``(kind, offset, stream)`` hold/resume marks; a hold never resumed lasts to the end."""
    open_: dict[str, float] = {}
    intervals: list[Interval] = []
    for kind, offset, stream in marks:
        if kind == "hold":
            open_.setdefault(stream, offset)
        elif kind == "resume" and stream in open_:
            intervals.append((open_.pop(stream), offset))
    intervals.extend((start, max(start, duration)) for start in open_.values())
    return intervals
