"""Per-call analytics through the real import path: metrics match a known talk pattern,
categories and adherence are stored and searchable, a new transcript is analysed on its own,
deleting the recording drops them."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from callvault.db.insight_models import CategoryHit, RecordingInsight
from callvault.db.models import RecordingEvent
from callvault.errors import NotFound
from callvault.jobs.port import JobFailed
from callvault.runtime.jobs.handlers import job_handlers
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from callvault.services.search import RecordingQuery
from callvault.speech.transcript import ChannelTranscript, Segment, Transcript, Word
from tests.support.audio import mono_wav, stereo_wav, voice
from tests.support.people import ADMIN
from tests.support.vault_calls import seal_call

RATE = 8000
DURATION = 20.0
# Who speaks when (seconds): 0.5 s of overtalk at 3.5-4.0, hold from 16 to 19.
AGENT = [(0.5, 4.0), (9.0, 12.0)]
CUSTOMER = [(3.5, 8.0), (12.5, 15.0)]
HOLD = (16.0, 19.0)


def lane(intervals: list[tuple[float, float]], f0: float, seed: int) -> np.ndarray:
    pcm = np.zeros(int(DURATION * RATE), dtype=np.int16)
    for k, (start, end) in enumerate(intervals):
        part = voice(end - start, RATE, f0, seed + k)
        pcm[int(start * RATE) : int(start * RATE) + part.size] = part
    return pcm


def spoken(speaker: str, intervals: list[tuple[float, float]], sentences: list[str]) -> ChannelTranscript:
    segments = []
    for (start, end), sentence in zip(intervals, sentences, strict=True):
        tokens = sentence.split()
        step = (end - start) / len(tokens)
        words = tuple(Word(start + i * step, start + (i + 1) * step, t, 0.9) for i, t in enumerate(tokens))
        segments.append(Segment(start, end, sentence, words))
    return ChannelTranscript(speaker, tuple(segments))  # type: ignore[arg-type]


TRANSCRIPT = Transcript(
    channels=(
        spoken(
            "agent", AGENT, ["hello this call is recorded how can I help", "I can refund it for you today"]
        ),
        spoken(
            "customer", CUSTOMER, ["this is awful I want to cancel my account", "thank you that is great"]
        ),
    ),
    engine="test",
    model="none",
)


def import_call(ctx: ServiceContext) -> str:
    wav = stereo_wav(lane(AGENT, 120.0, 1), lane(CUSTOMER, 210.0, 7), RATE)
    result = ctx.importer.import_file(ADMIN, wav, ImportRequest(filename="call.wav"))
    with ctx.catalog.write() as session:
        for kind, at in (("hold", HOLD[0]), ("resume", HOLD[1])):
            session.add(
                RecordingEvent(
                    recording_id=result.recording_id, kind=kind, offset_seconds=at, data={"stream": "agent"}
                )
            )
    return result.recording_id


def add_categories(ctx: ServiceContext) -> None:
    for body in (
        {"name": "cancellation", "speaker": "customer", "phrases": ["cancel my account"]},
        {"name": "disclosure", "speaker": "agent", "phrases": ["this call is recorded"], "within_s": 5},
        {"name": "greeting late", "speaker": "agent", "phrases": ["refund it"], "within_s": 5},
    ):
        ctx.phrase_categories.create(ADMIN, body)


def test_metrics_match_the_known_talk_pattern_within_half_a_second(ctx: ServiceContext) -> None:
    rid = import_call(ctx)
    metrics = ctx.insights.analyse(rid, TRANSCRIPT)
    expected = {
        "agent_talk_s": 6.5,
        "customer_talk_s": 7.0,
        "overtalk_s": 0.5,
        "hold_s": 3.0,
        # 20 s - 3 s hold - 13 s with someone talking
        "silence_s": 4.0,
        "agent_longest_monologue_s": 3.5,
        "customer_longest_monologue_s": 4.5,
    }
    measured = metrics.to_json()
    errors = {name: abs(float(measured[name] or 0) - value) for name, value in expected.items()}
    print("metric errors (s):", {k: round(v, 3) for k, v in errors.items()})
    assert all(error <= 0.5 for error in errors.values()), (measured, errors)
    assert metrics.agent_talk_ratio == pytest.approx(6.5 / 13.5, abs=0.04)
    assert metrics.customer_interruptions == 1
    assert metrics.agent_wpm == pytest.approx(16 / (metrics.agent_talk_s / 60))
    with ctx.catalog.read() as session:
        row = session.get(RecordingInsight, rid)
        assert row is not None and row.activity_source == "audio"


def test_categories_adherence_and_sentiment_are_stored_shown_and_searchable(ctx: ServiceContext) -> None:
    add_categories(ctx)
    rid, other = import_call(ctx), import_call(ctx)
    ctx.insights.analyse(rid, TRANSCRIPT)
    detail = ctx.search.get(ADMIN, rid)["analytics"]
    assert detail["categories"] == ["cancellation", "disclosure", "greeting late"]
    assert [(h["category"], h["speaker"]) for h in detail["hits"]] == [
        ("disclosure", "agent"),
        ("cancellation", "customer"),
        ("greeting late", "agent"),
    ]
    assert {a["category"]: a["met"] for a in detail["adherence"]} == {
        "disclosure": True,
        "greeting late": False,
    }
    quarters = [q for q in detail["sentiment"]["customer"]["quarters"] if q is not None]
    assert quarters[0] < 0 < quarters[-1]
    assert ctx.search.get(ADMIN, other)["analytics"] is None

    def found(**filters: object) -> list[str]:
        return [item["id"] for item in ctx.search.search(ADMIN, RecordingQuery(**filters)).items]  # type: ignore[arg-type]

    assert found(category="cancellation") == [rid]
    assert found(category="competitor") == []
    assert found(min_overtalk=0.3) == [rid]
    assert found(min_overtalk=2.0) == []
    assert found(max_talk_ratio=0.6, min_talk_ratio=0.4) == [rid]
    assert found(max_talk_ratio=0.3) == []
    assert found(min_hold=2.5, category="disclosure") == [rid]


class Unhurried:
    """The Progress a worker hands a handler: never cancelled."""

    def __call__(self, fraction: float) -> None:
        self.fraction = fraction

    def cancelled(self) -> bool:
        return False


def test_storing_a_transcript_enqueues_its_analysis_and_the_job_writes_it_once(ctx: ServiceContext) -> None:
    add_categories(ctx)
    rid = import_call(ctx)
    assert ctx.transcripts.store(rid, TRANSCRIPT, 13.0) is True  # publishes transcript.ready
    (job,) = ctx.jobs.list(kind="analyse")
    assert job.payload == {"recording_id": rid}
    run = job_handlers(ctx)["analyse"]
    run(job.payload, Unhurried())
    run(job.payload, Unhurried())  # a retried job replaces its own output
    with ctx.catalog.read() as session:
        assert session.get(RecordingInsight, rid) is not None
        hits = session.scalars(select(CategoryHit).where(CategoryHit.recording_id == rid)).all()
        assert len(hits) == 3

    ctx.deletion.delete(Principal.system(), [rid], "erasure", "request 7")
    with ctx.catalog.read() as session:
        assert session.get(RecordingInsight, rid) is None
        assert session.scalars(select(CategoryHit).where(CategoryHit.recording_id == rid)).all() == []
    with pytest.raises(JobFailed):
        run(job.payload, Unhurried())  # deleted meanwhile: the job fails for good, nothing is written
    with ctx.catalog.read() as session:
        assert session.get(RecordingInsight, rid) is None


def test_a_recording_without_a_transcript_cannot_be_analysed(ctx: ServiceContext) -> None:
    rid = import_call(ctx)
    with pytest.raises(NotFound, match="no transcript"):
        ctx.insights.analyse_recording(rid)


def test_destroying_the_audio_drops_the_analytics_in_the_same_transaction(ctx: ServiceContext) -> None:
    add_categories(ctx)
    rid = import_call(ctx)
    ctx.insights.analyse(rid, TRANSCRIPT)
    assert ctx.playback.destroy_audio(Principal.system(), rid, "erasure request") is True
    with ctx.catalog.read() as session:
        assert session.get(RecordingInsight, rid) is None
        assert session.scalars(select(CategoryHit).where(CategoryHit.recording_id == rid)).all() == []


def test_without_per_side_audio_the_word_times_give_the_activity(ctx: ServiceContext) -> None:
    mixed = lane(AGENT, 120.0, 1) // 2 + lane(CUSTOMER, 210.0, 7) // 2
    mono = ctx.importer.import_file(ADMIN, mono_wav(mixed, RATE), ImportRequest(filename="mono.wav"))
    undecodable = seal_call(ctx)  # an archive of random bytes: its peaks cannot be computed
    for rid in (mono.recording_id, undecodable):
        metrics = ctx.insights.analyse(rid, TRANSCRIPT)
        # the words are spread evenly over each spoken interval, so the intervals come back
        assert metrics.agent_talk_s == pytest.approx(6.5, abs=0.5)
        assert metrics.overtalk_s == pytest.approx(0.5, abs=0.3)
        with ctx.catalog.read() as session:
            row = session.get(RecordingInsight, rid)
            assert row is not None and row.activity_source == "transcript"
