"""Transcripts at rest: sealed under the recording's data key, written once, destroyed with the audio."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from callvault.db.transcript_models import RecordingTranscript
from callvault.errors import NotFound
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.events import DomainEvent
from callvault.speech.transcript import ChannelTranscript, Segment, Transcript, Word
from tests.support.vault_calls import seal_call


def sample(word: str = "refund") -> Transcript:
    said = Segment(0.5, 1.5, f"I want a {word}", (Word(0.5, 0.7, "I", 0.9), Word(1.1, 1.5, word, 0.8)))
    return Transcript(
        channels=(
            ChannelTranscript("agent", (Segment(0.0, 0.4, "Hello", (Word(0.0, 0.4, "Hello", 0.95),)),)),
            ChannelTranscript("customer", (said,)),
        ),
        engine="test",
        model="none",
    )


class Heard:
    def __init__(self) -> None:
        self.events: list[DomainEvent] = []

    def handle(self, event: DomainEvent) -> None:
        self.events.append(event)


def test_stored_once_encrypted_and_announced(ctx: ServiceContext) -> None:
    heard = Heard()
    ctx.events.subscribe(heard)
    rid = seal_call(ctx)
    assert ctx.transcripts.get(rid) is None
    assert ctx.transcripts.store(rid, sample(), 1.4) is True
    # A retried job writes nothing and announces nothing the second time.
    assert ctx.transcripts.store(rid, sample("cancel"), 1.4) is False
    assert ctx.transcripts.get(rid) == sample()
    ready = [e for e in heard.events if e.type == "transcript.ready"]
    assert [e.data for e in ready] == [{"recording_id": rid, "recording_pk": rid}]
    with ctx.catalog.read() as session:
        row = session.scalars(select(RecordingTranscript)).one()
        assert b"refund" not in row.ciphertext and b"Hello" not in row.ciphertext
        assert row.word_count == 3


def test_deleted_recording_gets_nothing_written(ctx: ServiceContext) -> None:
    rid = seal_call(ctx)
    ctx.deletion.delete(Principal.system(), [rid], "retention", "test")
    with pytest.raises(NotFound):
        ctx.transcripts.store(rid, sample(), 1.0)
    with ctx.catalog.read() as session:
        assert session.scalars(select(RecordingTranscript)).all() == []


def test_deleting_the_recording_deletes_its_transcript(ctx: ServiceContext) -> None:
    kept, doomed = seal_call(ctx), seal_call(ctx)
    for rid in (kept, doomed):
        ctx.transcripts.store(rid, sample(), 1.0)
    ctx.deletion.delete(Principal.system(), [doomed], "erasure", "request 1")
    assert ctx.transcripts.get(doomed) is None
    assert ctx.transcripts.get(kept) == sample()
    with ctx.catalog.read() as session:
        assert list(session.scalars(select(RecordingTranscript.recording_id))) == [kept]


def test_destroying_the_audio_destroys_the_transcript(ctx: ServiceContext) -> None:
    rid = seal_call(ctx)
    ctx.transcripts.store(rid, sample(), 1.0)
    assert ctx.playback.destroy_audio(Principal.system(), rid, "erasure request") is True
    assert ctx.transcripts.get(rid) is None
    assert not ctx.transcripts.exists(rid)
    with pytest.raises(NotFound):
        ctx.transcripts.store(rid, sample(), 1.0)
