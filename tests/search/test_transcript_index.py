"""Transcript full-text search through the service layer, on SQLite FTS5 and PostgreSQL tsvector."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, text

from callvault.db.transcript_index_models import TranscriptIndexRow
from callvault.errors import InvalidInput
from callvault.jobs.port import JobFailed
from callvault.runtime.jobs.handlers import job_handlers
from callvault.services.context import ServiceContext
from callvault.services.search import RecordingQuery
from tests.support.people import ADMIN, Staff, create_staff
from tests.support.transcripts import WORD_SECONDS, transcript, word_at
from tests.support.vault_calls import seal_call

ALICE = "sip:1001@pbx.example"
BOB = "sip:1002@pbx.example"
REFUND_AT = 12.0  # "I want a refund for the broken phone": "refund" is word 3


@pytest.fixture
def staff(ctx: ServiceContext) -> Staff:
    return create_staff(ctx)


@pytest.fixture
def calls(ctx: ServiceContext, staff: Staff) -> dict[str, str]:
    """alice's and bob's calls where the customer asks for a refund, and one where nobody does."""
    ids = {
        "alice": seal_call(ctx, agent_aor=ALICE, queue="billing"),
        "bob": seal_call(ctx, agent_aor=BOB, queue="support"),
        "quiet": seal_call(ctx, agent_aor=ALICE, queue="billing"),
    }
    asks = transcript(
        agent=[(2.0, "Thank you for calling, how can I help"), (20.0, "I can help with that today")],
        customer=[(REFUND_AT, "I want a refund for the broken phone")],
    )
    ctx.transcript_index.index(ids["alice"], asks)
    ctx.transcript_index.index(ids["bob"], asks)
    ctx.transcript_index.index(
        ids["quiet"], transcript(agent=[(1.0, "Good morning")], customer=[(3.0, "Hi")])
    )
    return ids


def found(ctx: ServiceContext, staff: Staff, who: str, **query: object) -> list[str]:
    page = ctx.search.search(staff.principals[who], RecordingQuery(**query))  # type: ignore[arg-type]
    return sorted(item["id"] for item in page.items)


def test_customer_refund_is_found_with_word_times_only_in_the_callers_scope(
    ctx: ServiceContext, staff: Staff, calls: dict[str, str]
) -> None:
    page = ctx.search.search(staff.principals["alice"], RecordingQuery(text="refund", speaker="customer"))
    assert [item["id"] for item in page.items] == [calls["alice"]]
    assert page.total == 1
    start, end = word_at(REFUND_AT, 3)
    [match] = page.items[0]["matches"]
    assert match["speaker"] == "customer"
    assert (match["start"], match["end"]) == pytest.approx((start, end))
    assert match["text"] == "refund"
    assert "want a refund for" in match["snippet"]
    assert found(ctx, staff, "bob", text="refund", speaker="customer") == [calls["bob"]]
    assert found(ctx, staff, "dana", text="refund") == []  # alice's teammate, agent scope: own calls
    assert found(ctx, staff, "carol", text="refund") == sorted([calls["alice"], calls["bob"]])
    assert found(ctx, staff, "carol", text="refund", speaker="agent") == []
    assert found(ctx, staff, "carol", text="refund", queue="billing") == [calls["alice"]]
    assert found(ctx, staff, "carol", text="HELP", speaker="agent") == sorted([calls["alice"], calls["bob"]])


def test_phrases_prefixes_and_every_term_on_one_side(
    ctx: ServiceContext, staff: Staff, calls: dict[str, str]
) -> None:
    both = sorted([calls["alice"], calls["bob"]])
    assert found(ctx, staff, "carol", text='"broken phone"') == both
    assert found(ctx, staff, "carol", text='"phone broken"') == []
    assert found(ctx, staff, "carol", text="refun*") == both
    assert found(ctx, staff, "carol", text="refun") == []
    assert found(ctx, staff, "carol", text="refund broken") == both
    # "refund" is the customer's, "calling" the agent's: no one side said both.
    assert found(ctx, staff, "carol", text="refund calling") == []
    page = ctx.search.search(staff.principals["carol"], RecordingQuery(text="i", limit=1))
    assert page.total == 2 and len(page.items) == 1
    spans = [(m["speaker"], m["start"], m["text"]) for m in page.items[0]["matches"]]
    assert spans == [("agent", pytest.approx(4.4), "I"), ("customer", 12.0, "I"), ("agent", 20.0, "I")]


@pytest.mark.parametrize(
    "hostile",
    [
        '"',
        'refund" OR "x',
        "NEAR(refund phone)",
        "refund OR phone",
        "refund AND NOT phone",
        "-refund",
        "tokens:refund",
        "refund:* & !phone | (a <-> b)",
        "^refund",
        "'; DROP TABLE recordings; --",
        "refund\x00phone",
        "*",
        "***refund",
        "é" * 400,
        "refund " * 16,
    ],
)
def test_hostile_text_is_plain_words_or_a_precise_refusal(
    ctx: ServiceContext, staff: Staff, calls: dict[str, str], hostile: str
) -> None:
    try:
        page = ctx.search.search(staff.principals["carol"], RecordingQuery(text=hostile))
    except InvalidInput as exc:
        assert exc.message.startswith("text: ")
        return
    assert all(item["id"] in calls.values() for item in page.items)


def test_text_limits_and_speaker_checks(ctx: ServiceContext, staff: Staff) -> None:
    carol = staff.principals["carol"]
    for query, message in [
        (RecordingQuery(text="x" * 501), "at most 500"),
        (RecordingQuery(text=" ".join(f"w{i}" for i in range(17))), "at most 16"),
        (RecordingQuery(text="!!! ???"), "no words"),
        (RecordingQuery(text="refund", speaker="supervisor"), "speaker must be one of agent, customer"),
        (RecordingQuery(speaker="agent"), "give text as well"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            ctx.search.search(carol, query)


def test_reindexing_replaces_a_recordings_words(
    ctx: ServiceContext, staff: Staff, calls: dict[str, str]
) -> None:
    again = transcript(customer=[(1.0, "please cancel my subscription")])
    assert ctx.transcript_index.index(calls["alice"], again)
    assert ctx.transcript_index.index(calls["alice"], again)
    assert found(ctx, staff, "carol", text="refund") == [calls["bob"]]
    assert found(ctx, staff, "carol", text="subscription") == [calls["alice"]]
    assert _rows(ctx, calls["alice"]) == 1  # the agent said nothing this time


def test_the_index_holds_the_redacted_words_only(ctx: ServiceContext, staff: Staff) -> None:
    recording = seal_call(ctx, agent_aor=ALICE)
    said = transcript(customer=[(5.0, "my card number is 4111 1111 1111 1111 thanks")])
    assert ctx.transcript_index.index(recording, said)  # redacted by speech/pii.py, as wired
    assert found(ctx, staff, "carol", text="4111") == []
    assert found(ctx, staff, "carol", text='"card number is"') == [recording]
    with ctx.catalog.read() as session:
        stored = session.execute(select(TranscriptIndexRow.tokens, TranscriptIndexRow.words)).one()
    assert "4111" not in repr(stored) and "1111" not in repr(stored)
    assert "[card]" in [word[2] for word in stored.words]  # shown in place, never a search word
    assert found(ctx, staff, "carol", text="card") == [recording]  # "my card number", not the tag
    if ctx.catalog.is_sqlite:
        assert _engine_hits(ctx, "4111") == 0


def test_destroying_the_audio_destroys_the_index_rows(
    ctx: ServiceContext, staff: Staff, calls: dict[str, str]
) -> None:
    outcome = ctx.deletion.delete(ADMIN, [calls["alice"]], "retention", "test policy")
    assert outcome.deleted == [calls["alice"]]
    assert ctx.recordings.destroy_audio_key(calls["bob"])
    assert _rows(ctx, calls["alice"]) == _rows(ctx, calls["bob"]) == 0
    assert _engine_hits(ctx, "refund") == 0
    assert found(ctx, staff, "carol", text="refund") == []
    # A transcript finishing after the deletion is not indexed.
    assert not ctx.transcript_index.index(calls["alice"], transcript(customer=[(1.0, "refund")]))
    assert _rows(ctx, calls["alice"]) == 0


def test_a_stored_transcript_is_indexed_by_its_transcript_ready_event(
    ctx: ServiceContext, staff: Staff
) -> None:
    recording = seal_call(ctx, agent_aor=ALICE)
    assert ctx.transcripts.store(recording, transcript(customer=[(7.0, "where is my parcel")]), 2.0)
    assert found(ctx, staff, "alice", text="parcel", speaker="customer") == [recording]


def _rows(ctx: ServiceContext, recording_id: str) -> int:
    with ctx.catalog.read() as session:
        return (
            session.scalar(select(func.count()).where(TranscriptIndexRow.recording_id == recording_id)) or 0
        )


def _engine_hits(ctx: ServiceContext, word: str) -> int:
    """Entries the full-text engine itself still holds for ``word``."""
    with ctx.catalog.read() as session:
        if ctx.catalog.is_sqlite:
            statement = text("SELECT count(*) FROM transcript_fts WHERE transcript_fts MATCH :w")
        else:
            statement = text("SELECT count(*) FROM transcript_index WHERE tsv @@ to_tsquery('simple', :w)")
        return int(session.scalar(statement, {"w": word}) or 0)


class _Progress:
    def __init__(self) -> None:
        self.done = 0.0

    def __call__(self, fraction: float) -> None:
        self.done = fraction

    def cancelled(self) -> bool:
        return False


def test_the_index_transcript_job_reindexes_a_stored_transcript(ctx: ServiceContext, staff: Staff) -> None:
    recording = seal_call(ctx, agent_aor=ALICE)
    assert ctx.transcripts.store(recording, transcript(customer=[(3.0, "cancel my contract")]), 1.5)
    forget_all(ctx)
    assert found(ctx, staff, "carol", text="contract") == []  # e.g. the subscriber failed
    handler = job_handlers(ctx)["index_transcript"]
    progress = _Progress()
    handler({"recording_id": recording}, progress)
    handler({"recording_id": recording}, progress)  # a retried job: the same rows once
    assert progress.done == 1.0 and _rows(ctx, recording) == 1
    assert found(ctx, staff, "carol", text="contract", speaker="customer") == [recording]
    for payload, reason in [
        ({"recording_id": seal_call(ctx)}, "no stored transcript"),
        ({"recording_id": 7}, "recording_id must be"),
    ]:
        with pytest.raises(JobFailed, match=reason):
            handler(payload, progress)


def forget_all(ctx: ServiceContext) -> None:
    with ctx.catalog.write() as session:
        session.execute(delete(TranscriptIndexRow))


BLOCK_S = 300 * WORD_SECONDS  # 300 words, two minutes at 150 words a minute


def long_side(blocks: int, said: dict[int, str]) -> list[tuple[float, str]]:
    """One side talking non-stop in blocks of 300 words (288 filler words ``w<n>``, then
    ``said[block]`` or 12 more words)."""
    lines = []
    for block in range(blocks):
        filler = " ".join(f"w{block * 300 + i}" for i in range(288))
        lines.append(
            (block * BLOCK_S, f"{filler} {said.get(block, 'and so on and so forth and so on ok then now')}")
        )
    return lines


def test_a_long_sides_late_words_and_phrases_are_found(ctx: ServiceContext, staff: Staff) -> None:
    # 140 minutes of non-stop talk: 21,000 words on one side, past PostgreSQL's 16,383 positions.
    rid = seal_call(ctx, agent_aor=ALICE)
    said = {5: "my parcel never arrived at all", 66: "I want to speak to a manager"}
    ctx.transcript_index.index(rid, transcript(customer=long_side(70, said), agent=[(3.0, "hello")]))
    with ctx.catalog.read() as session:
        parts = session.scalars(
            select(TranscriptIndexRow.part).where(TranscriptIndexRow.recording_id == rid)
        ).all()
    assert sorted(parts) == [0, 0, 1, 2]  # the agent's one part, the customer's three
    carol = staff.principals["carol"]
    page = ctx.search.search(carol, RecordingQuery(text='"speak to a manager"', speaker="customer"))
    assert [item["id"] for item in page.items] == [rid]
    [match] = page.items[0]["matches"]
    assert match["start"] == pytest.approx(66 * BLOCK_S + word_at(0, 288 + 3)[0])  # minute 132
    assert match["text"] == "speak to a manager"
    # Every term on one side, in different parts of it; never across sides.
    assert found(ctx, staff, "carol", text='parcel "speak to a manager"') == [rid]
    assert found(ctx, staff, "carol", text="parcel manager", speaker="customer") == [rid]
    assert found(ctx, staff, "carol", text="parcel hello") == []
    # A phrase said across a cut between parts is still whole in one of them.
    for cut_words in (7990, 8010):
        minute, index = divmod(cut_words, 300)
        assert found(ctx, staff, "carol", text=f'"w{minute * 300 + index} w{minute * 300 + index + 1}"') == [
            rid
        ], cut_words
    # A word in the overlap of two parts is one hit, not two.
    page = ctx.search.search(carol, RecordingQuery(text="w7995"))
    assert len(page.items[0]["matches"]) == 1
