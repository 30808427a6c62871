"""The transcript search index: one interface over SQLite FTS5 and PostgreSQL tsvector + GIN.

What is indexed is the **redacted** transcript. Transcripts are encrypted at
rest under each recording's data key; the index is plain catalog rows, so a
card number or SSN indexed here would outlive the crypto-shred that destroys
the audio. The ``redact`` function given at construction (the PII redaction of
:mod:`callvault.speech.pii` where it is wired) is applied before anything is
written, and rows are deleted in the same transaction that destroys the audio
(:func:`forget_indexed`, called by deletion, erasure, retention and
crypto-shred) and by the foreign key's cascade when a row is removed.

Indexing is idempotent: a recording's rows are replaced whole, in one
transaction that also checks the recording still has its audio.

A long side is indexed in parts (:func:`~callvault.speech.text_search.index_parts`:
PostgreSQL keeps word positions only up to 16,383 per tsvector, so a phrase
said later could never match). A query's terms must all be said by one side:
in one part (every call of usual length), or across the parts of a side.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    and_,
    bindparam,
    delete,
    func,
    intersect,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.db.transcript_index_models import TranscriptIndexRow
from callvault.services.events import DomainEvent, EventBus
from callvault.speech.text_search import (
    TextQuery,
    channel_units,
    find_matches,
    index_parts,
    indexed_text,
)
from callvault.speech.transcript import SPEAKERS, Speaker, Transcript

log = logging.getLogger(__name__)

TRANSCRIPT_READY = "transcript.ready"
Redact = Callable[[Transcript], Transcript]


def index_as_transcribed(transcript: Transcript) -> Transcript:
    """The redaction used where no PII redaction is wired: the transcript as it is."""
    return transcript


class TranscriptSource(Protocol):
    """Where a finished transcript is read from (the transcription service)."""

    def get(self, recording_pk: str) -> Transcript | None: ...


class TranscriptIndex:
    def __init__(self, catalog: Catalog, redact: Redact = index_as_transcribed) -> None:
        self._catalog = catalog
        self._redact = redact

    def index(self, recording_id: str, transcript: Transcript) -> bool:
        """Replace the recording's rows with ``transcript``'s (redacted); False if its audio is gone."""
        redacted = self._redact(transcript)
        sides = [
            (speaker, index_parts(units))
            for speaker in SPEAKERS
            if (units := channel_units(redacted.channel(speaker)))
        ]
        now = datetime.now(UTC)
        with self._catalog.write() as session:
            recording = session.scalars(
                select(Recording).where(Recording.id == recording_id).with_for_update()
            ).one_or_none()
            if recording is None or recording.deleted_at is not None or recording.key_destroyed_at:
                log.info("recording %s: not indexed, its audio is gone", recording_id)
                return False
            forget_indexed(session, [recording_id])
            session.add_all(
                TranscriptIndexRow(
                    recording_id=recording_id,
                    speaker=speaker,
                    part=part,
                    parts=len(parts),
                    tokens=indexed_text(units),
                    words=[[u.start, u.end, u.text] for u in units],
                    indexed_at=now,
                )
                for speaker, parts in sides
                for part, units in enumerate(parts)
            )
        return True

    def follow(self, events: EventBus, source: TranscriptSource) -> None:
        """Index each transcript announced on ``events`` as ``transcript.ready``, read from ``source``."""
        events.subscribe(TranscriptIndexing(self, source))

    def condition(self, query: TextQuery, speaker: Speaker | None) -> ColumnElement[bool]:
        """A condition on ``Recording.id``: one side of the call said every term of ``query``."""
        in_one_part = select(TranscriptIndexRow.recording_id).where(self._part_matches(query, speaker))
        if len(query.terms) == 1:
            return Recording.id.in_(in_one_part)
        # A long side's terms may lie in different parts: each term in some part of one side.
        per_term = [
            select(TranscriptIndexRow.recording_id, TranscriptIndexRow.speaker).where(
                self._part_matches(TextQuery((term,)), speaker), TranscriptIndexRow.parts > 1
            )
            for term in query.terms
        ]
        sides = intersect(*per_term).subquery()
        return or_(Recording.id.in_(in_one_part), Recording.id.in_(select(sides.c.recording_id)))

    def matches(
        self, session: Session, recording_ids: Iterable[str], query: TextQuery, speaker: Speaker | None
    ) -> dict[str, list[dict[str, Any]]]:
        """Where ``query`` matched in each recording: speaker, start, end, text, snippet; by time.

        Parts of a long side overlap by a few words: a match found in both is reported once.
        """
        any_term = or_(*(self._part_matches(TextQuery((term,)), speaker) for term in query.terms))
        rows = session.execute(
            select(
                TranscriptIndexRow.recording_id, TranscriptIndexRow.speaker, TranscriptIndexRow.words
            ).where(
                TranscriptIndexRow.recording_id.in_(list(recording_ids)),
                or_(self._part_matches(query, speaker), and_(TranscriptIndexRow.parts > 1, any_term)),
            )
        )
        found: dict[str, dict[tuple[float, str], dict[str, Any]]] = {}
        for recording_id, side, words in rows:
            hits = found.setdefault(recording_id, {})
            for m in find_matches(words, query):
                hits[(m.start, side)] = {
                    "speaker": side,
                    "start": m.start,
                    "end": m.end,
                    "text": m.text,
                    "snippet": m.snippet,
                }
        return {recording_id: [hits[key] for key in sorted(hits)] for recording_id, hits in found.items()}

    def _part_matches(self, query: TextQuery, speaker: Speaker | None) -> ColumnElement[bool]:
        """A condition on one index row: every term of ``query`` is in that part."""
        if self._catalog.is_sqlite:
            # A unique parameter: one statement may hold several of these (one per term).
            fts = text("SELECT rowid FROM transcript_fts WHERE transcript_fts MATCH :fts").bindparams(
                bindparam("fts", query.fts5(), unique=True)
            )
            condition: ColumnElement[bool] = TranscriptIndexRow.id.in_(fts)
        else:
            tsquery = func.to_tsquery(literal_column("'simple'::regconfig"), query.tsquery())
            condition = literal_column("transcript_index.tsv").op("@@")(tsquery)
        if speaker is not None:
            condition = condition & (TranscriptIndexRow.speaker == speaker)
        return condition


class TranscriptIndexing:
    """The ``transcript.ready`` subscriber: indexes the announced recording's transcript."""

    def __init__(self, index: TranscriptIndex, source: TranscriptSource) -> None:
        self._index = index
        self._source = source

    def handle(self, event: DomainEvent) -> None:
        if event.type != TRANSCRIPT_READY:
            return
        recording_id = str(event.data["recording_id"])
        transcript = self._source.get(str(event.data.get("recording_pk", recording_id)))
        if transcript is None:  # destroyed, or not readable here: nothing to index
            return
        self._index.index(recording_id, transcript)


def forget_indexed(session: Session, recording_ids: list[str]) -> None:
    """Delete the recordings' index rows in ``session``'s transaction (the FTS5 triggers follow)."""
    if recording_ids:
        session.execute(
            delete(TranscriptIndexRow).where(TranscriptIndexRow.recording_id.in_(recording_ids)),
            execution_options={"synchronize_session": False},
        )
