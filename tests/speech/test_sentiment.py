"""Sentiment per side and over time, from the VADER lexicon installed with the package."""

from __future__ import annotations

from callvault.speech.sentiment import label, score_segments, score_text, summarise
from callvault.speech.transcript import ChannelTranscript, Segment, Transcript
from tests.speech.pii_helpers import channel, transcript


def test_words_carry_their_polarity_and_negation_flips_it() -> None:
    assert score_text("this is terrible and I am very angry") < -0.5
    assert score_text("thank you so much, that is great") > 0.5
    assert score_text("I am not happy") < 0
    assert label(score_text("my address is ten main street")) == "neutral"


def test_each_side_is_summarised_per_call_and_per_quarter() -> None:
    call = transcript(
        "I am sorry to hear that | I can fix it for you | great",
        "this is awful I am furious | okay | thank you that is wonderful",
    )
    duration = call.channel("customer").words[-1].end
    agent, customer = summarise(call, duration)
    scored = [q for q in customer.quarters if q is not None]
    assert len(scored) >= 2 and scored[0] < 0 < scored[-1]  # angry at the start, pleased at the end
    assert agent.speaker == "agent" and customer.speaker == "customer"
    assert len(score_segments(call)) == 6


def test_a_silent_side_has_no_score() -> None:
    call = transcript("hello", "")
    _, customer = summarise(call, 10.0)
    assert customer.score is None and customer.label == "none"


def test_a_segment_holding_a_complaint_and_thanks_is_scored_per_sentence() -> None:
    call = transcript("", "this is awful and I am angry. thank you, that is wonderful.")
    first, second = score_segments(call)
    assert first.score < 0 < second.score
    assert first.end <= second.start and first.words == 7 and second.words == 5


def test_a_long_pause_ends_a_sentence_even_without_punctuation() -> None:
    call = transcript("", "this is awful and I am angry")
    late = channel("thank you that is wonderful", "customer", start=20.0)
    merged = Segment(0.0, late.words[-1].end, "", call.channel("customer").words + late.words)
    first, second = score_segments(Transcript((ChannelTranscript("customer", (merged,)),), "t", "t"))
    assert first.score < 0 < second.score
