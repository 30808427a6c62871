"""Analyse a transcribed call: talk metrics, category hits, script adherence, sentiment.

Runs when ``transcript.ready`` is published (one background thread, so the
transcription job that stored the transcript never waits for it) and on demand
(:meth:`CallInsights.analyse_recording`, for a backfill or after categories
change). Voice activity comes from the archive's own channels (its waveform
peaks, cached by :class:`~callvault.services.waveform.WaveformService`): agent
left, customer right. A mixed or mono archive has no per-side audio, so the
transcript's word times stand in. Hold time comes from the recording's hold and
resume events.

The result replaces the call's previous analytics in one transaction that
first checks the recording still has its audio, so a call deleted meanwhile
gets nothing written; ``recording.deleted`` drops them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import Recording, RecordingEvent
from callvault.errors import CallvaultError, NotFound
from callvault.services.events import DomainEvent
from callvault.services.insight_store import forget_insights, save_insight
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
TranscriptSource = Callable[[str], Transcript | None]


class CallInsights:
    def __init__(
        self,
        catalog: Catalog,
        waveforms: WaveformService,
        categories: PhraseCategories,
        transcript_of: TranscriptSource,
    ) -> None:
        self._catalog = catalog
        self._waveforms = waveforms
        self._categories = categories
        self._transcript_of = transcript_of
        self._background = ThreadPoolExecutor(1, thread_name_prefix="insights")

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
        if stereo:
            peaks = self._waveforms.compute(recording_id)
            if peaks.channels == 2:
                lanes = peaks.lanes()
                source = "audio"
                activity = {
                    "agent": activity_from_levels(lanes[0], peaks.bucket_seconds),
                    "customer": activity_from_levels(lanes[1], peaks.bucket_seconds),
                }
                duration = duration or peaks.duration_seconds
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

    # -- domain events ---------------------------------------------------------------------

    def handle(self, event: DomainEvent) -> None:
        recording_id = event.data.get("recording_id")
        if not isinstance(recording_id, str):
            return
        if event.type == READY_EVENT:
            self._background.submit(self._analyse_quietly, recording_id)
        elif event.type == "recording.deleted":
            self._background.submit(self.forget, recording_id)

    def forget(self, recording_id: str) -> None:
        with self._catalog.write() as session:
            forget_insights(session, [recording_id])

    def _analyse_quietly(self, recording_id: str) -> None:
        try:
            self.analyse_recording(recording_id)
        except CallvaultError as exc:
            log.warning("analytics of recording %s not computed: %s", recording_id, exc.message)
        except Exception:  # a bad transcript must not stop the thread that analyses the next call
            log.exception("analytics of recording %s failed", recording_id)

    def close(self) -> None:
        self._background.shutdown(wait=True, cancel_futures=True)


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
