"""Phrase spotting with categories and script adherence."""

from __future__ import annotations

import pytest

from callvault.speech.phrases import Category, adherence, spot, tokens, validate_phrase
from tests.speech.pii_helpers import transcript

CANCEL = Category(1, "cancellation", ("cancel my account", "close my account"), "customer")
DISCLOSURE = Category(2, "disclosure", ("this call is recorded", "this call may be recorded"), "agent", 10.0)
COMPETITOR = Category(3, "competitor", ("acme telecom",), "any")


def test_each_side_is_spotted_only_for_its_categories_with_times() -> None:
    call = transcript(
        "hello this call may be recorded for quality how can I help",
        "hi I want to um cancel my account because acme telecom is cheaper",
    )
    hits = spot(call, [CANCEL, DISCLOSURE, COMPETITOR])
    assert [(h.category_id, h.speaker, h.phrase) for h in hits] == [
        (2, "agent", "this call may be recorded"),
        (1, "customer", "cancel my account"),
        (3, "customer", "acme telecom"),
    ]
    disclosure = hits[0]
    assert disclosure.start == pytest.approx(0.4) and disclosure.end == pytest.approx(2.35)


def test_the_agent_saying_the_customer_phrase_is_not_a_hit() -> None:
    call = transcript("do you want to cancel my account", "no thanks")
    assert spot(call, [CANCEL]) == []


def test_matching_tolerates_punctuation_case_and_one_letter_in_long_words() -> None:
    call = transcript("", "I'd like to CANCEL, my acount please")
    assert len(spot(call, [CANCEL])) == 1
    assert spot(transcript("", "cancel me account"), [CANCEL]) == []  # short words must match exactly
    assert spot(transcript("", "cancel his account"), [CANCEL]) == []


def test_adherence_is_met_only_when_said_in_time() -> None:
    late = transcript("hello how are you today I am fine | thanks this call is recorded", "")
    on_time = transcript("this call is recorded hello", "")
    never = transcript("hello", "")
    for call, met in ((on_time, True), (never, False)):
        (report,) = adherence(spot(call, [DISCLOSURE]), [CANCEL, DISCLOSURE])
        assert report.met is met
    strict = Category(2, "disclosure", DISCLOSURE.phrases, "agent", 2.0)
    (report,) = adherence(spot(late, [strict]), [strict])
    assert report.met is False and report.at is not None and report.at > 2.0


def test_phrases_are_validated() -> None:
    assert validate_phrase("  this   call is recorded ") == "this call is recorded"
    assert tokens("Don't, uh, CANCEL!") == ["dont", "cancel"]
    with pytest.raises(ValueError, match="no words"):
        validate_phrase(" ... ")
    with pytest.raises(ValueError, match="at most"):
        validate_phrase(" ".join(["word"] * 13))
