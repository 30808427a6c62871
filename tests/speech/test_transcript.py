"""The transcript model: JSON round trip, hostile input refused precisely, turns merged by time."""

from __future__ import annotations

import re

import pytest

from callvault.speech.transcript import ChannelTranscript, Segment, Transcript, Word, turns


def _segment(start: float, end: float, text: str) -> Segment:
    words = text.split()
    step = (end - start) / len(words)
    return Segment(
        start,
        end,
        text,
        tuple(Word(start + i * step, start + (i + 1) * step, w, 0.9) for i, w in enumerate(words)),
    )


TRANSCRIPT = Transcript(
    channels=(
        ChannelTranscript("agent", (_segment(0.0, 2.0, "thank you for calling"), _segment(2.5, 3.0, "how"))),
        ChannelTranscript("customer", (_segment(3.5, 5.0, "I want a refund"),)),
    ),
    engine="faster-whisper",
    model="tiny.en",
)


def test_json_round_trip_keeps_every_word_and_time() -> None:
    again = Transcript.from_json(TRANSCRIPT.to_json())
    assert again == TRANSCRIPT
    assert [w.text for w in again.channel("customer").words] == ["I", "want", "a", "refund"]
    assert again.channel("agent").text == "thank you for calling how"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(channels="x"), "transcript.channels: expected a list"),
        (lambda d: d["channels"][0].update(speaker="boss"), "channels[0].speaker"),
        (lambda d: d["channels"][1].update(speaker="agent"), "a speaker appears twice"),
        (lambda d: d["channels"][0]["segments"][0].update(end=-1), "cannot be negative"),
        (lambda d: d["channels"][0]["segments"][0].update(start=9), "ends (2.0) before it starts"),
        (lambda d: d["channels"][0]["segments"][0]["words"][0].update(confidence=2), "outside 0..1"),
        (lambda d: d["channels"][0]["segments"][0]["words"][0].update(start=float("nan")), "finite"),
        (lambda d: d.update(engine=None), "transcript.engine: expected a string"),
    ],
)
def test_hostile_json_is_refused_with_where_it_went_wrong(mutate: object, message: str) -> None:
    data = TRANSCRIPT.to_json()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(ValueError, match=re.escape(message)):
        Transcript.from_json(data)


def test_turns_interleave_speakers_in_time_and_join_close_segments() -> None:
    merged = turns(TRANSCRIPT)
    assert [(t.speaker, t.start, t.end) for t in merged] == [("agent", 0.0, 3.0), ("customer", 3.5, 5.0)]
    assert merged[0].text == "thank you for calling how"
    apart = turns(TRANSCRIPT, join_gap_s=0.1)
    assert [t.speaker for t in apart] == ["agent", "agent", "customer"]


def test_a_missing_channel_reads_as_empty() -> None:
    only_agent = Transcript((TRANSCRIPT.channels[0],), "e", "m")
    assert only_agent.channel("customer").words == ()
