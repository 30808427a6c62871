"""PII detection and redaction on transcripts: what must be found, and what must not."""

from __future__ import annotations

import pytest

from callvault.speech.pii import PiiSpan, find_pii, luhn_valid, redact
from callvault.speech.pii_text import iban_valid
from callvault.speech.transcript import ChannelTranscript, Segment, Transcript
from tests.speech.pii_helpers import channel, transcript


def kinds(text: str) -> list[tuple[str, str]]:
    """(kind, the words it covers) for every span found in ``text``."""
    found = channel(text)
    words = found.words
    return [
        (span.kind, " ".join(w.text for w in words[span.first_word : span.last_word + 1]))
        for span in find_pii(found)
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("my card number is 4111 1111 1111 1111 thanks", "4111 1111 1111 1111"),
        ("it's 4111-1111-1111-1111.", "4111-1111-1111-1111."),
        ("four one one one one one one one one one one one one one one one", None),
        ("five five oh oh | oh oh oh oh oh oh oh oh oh oh oh four", None),
        ("it's 5500 0000 0000 0004 and that's it", "5500 0000 0000 0004"),
        ("double four double four 3 3 | 4444 4444 41", None),
        ("amex 3782 822463 10005", "3782 822463 10005"),
        ("it's 4 1 1 1, 1 1 1 1, uh 1 1 1 1, 1 1 1 1.", "4 1 1 1, 1 1 1 1, uh 1 1 1 1, 1 1 1 1."),
        ("it's 4111 -1111, 1 -1 -1 -1, .1111.", "4111 -1111, 1 -1 -1 -1, .1111."),
        ("forty one eleven eleven eleven eleven eleven eleven eleven", None),
    ],
)
def test_card_numbers_are_found_in_every_shape(text: str, expected: str | None) -> None:
    found = kinds(text)
    assert [kind for kind, _ in found] == ["card"]
    if expected is not None:
        assert found[0][1] == expected


def test_a_card_split_across_segments_is_one_span_covering_both() -> None:
    spoken = channel("my card is 4111 1111 | 1111 1111 okay", gap_s=2.5)
    (span,) = find_pii(spoken)
    assert (span.kind, span.first_word, span.last_word) == ("card", 3, 6)
    assert span.start == spoken.words[3].start and span.end == spoken.words[6].end


@pytest.mark.parametrize(
    "text",
    [
        "order number 1234 5678 9012 3456",
        "the tracking number is 1234 5678 9012 3457 8",
        "reference one two three four five six seven eight nine zero one two three four five six",
        "I have three kids and two dogs",
        "oh that's fine, oh well",
        "it costs 25 dollars and 99 cents",
        "the year 2024 in March at 10 30",
        "my postcode is 90210",
        "the ticket is 4111 1111 1111 1112",
    ],
)
def test_numbers_that_are_not_pii_are_left_alone(text: str) -> None:
    assert kinds(text) == []


def test_a_card_number_after_a_long_pause_is_two_numbers_and_neither_is_a_card() -> None:
    # 4111 1111 then 10 s of silence then 1111 1111: not one number
    spoken = channel("4111 1111 | 1111 1111", gap_s=10.0)
    assert find_pii(spoken) == []


def test_a_card_cue_keeps_a_misheard_card_redacted_but_an_order_number_is_not() -> None:
    assert kinds("my card number is 4111 1111 1111 1112") == [("card", "4111 1111 1111 1112")]
    assert kinds("my card order number is 4111 1111 1111 1112") == []


@pytest.mark.parametrize(
    ("text", "kind", "covered"),
    [
        ("the security code is 1 2 3", "cvv", "1 2 3"),
        ("CVV 4 3 2 1", "cvv", "4 3 2 1"),
        ("the three digit code on the back is seven seven oh", "cvv", "seven seven oh"),
        ("my social security number is 123-45-6789", "ssn", "123-45-6789"),
        (
            "social is one two three four five six seven eight nine",
            "ssn",
            "one two three four five six seven eight nine",
        ),
        ("it is 123-45-6789", "ssn", "123-45-6789"),
        ("IBAN GB82 WEST 1234 5698 7654 32 thanks", "iban", "GB82 WEST 1234 5698 7654 32"),
        ("iban DE89 3704 0044 0532 0130 00", "iban", "DE89 3704 0044 0532 0130 00"),
        ("email john dot smith at example dot com please", "email", "john dot smith at example dot com"),
        ("it's john.smith@example.co.uk.", "email", "john.smith@example.co.uk."),
        (
            "it's jane underscore doe at mail dot example dot org",
            "email",
            "jane underscore doe at mail dot example dot org",
        ),
        ("call me on 415 555 0123", "phone", "415 555 0123"),
        ("call me on four one five five five five oh one two three", "phone", None),
        ("+44 20 7946 0958", "phone", "+44 20 7946 0958"),
        ("my mobile is 07700 900123", "phone", "07700 900123"),
        ("my phone number is 555 2368", "phone", "555 2368"),
    ],
)
def test_other_kinds_are_found(text: str, kind: str, covered: str | None) -> None:
    found = kinds(text)
    assert [k for k, _ in found] == [kind]
    if covered is not None:
        assert found[0][1] == covered


@pytest.mark.parametrize(
    "text",
    [
        "the part is 000-12-3456",  # area 000 is never issued, and nothing says SSN
        "the code is 123",  # a code, but nothing says it is a card's
        "IBAN GB82 WEST 1234 5698 7654 33",  # one digit off: mod-97 fails
        "meet me at the office",  # "at" without a domain
        "we are at example dot nothing",  # not a known top-level domain
        "reference 4155550123",
        "it was 555 2368 units",  # seven digits without a phone cue
    ],
)
def test_near_misses_are_not_pii(text: str) -> None:
    assert kinds(text) == []


def test_the_security_code_the_agent_asks_for_is_found_on_the_customer_channel() -> None:
    agent = channel("and what is the security code on the back", "agent", start=0.0)
    customer = channel("um it is 7 3 1", "customer", start=4.0)
    assert find_pii(customer) == []  # alone, "7 3 1" is nothing
    (span,) = find_pii(customer, prompts=agent)
    assert span.kind == "cvv" and span.speaker == "customer"


def test_a_code_given_right_after_a_card_is_its_security_code() -> None:
    assert [
        k for k, _ in kinds("card 4111 1111 1111 1111 expiry twelve twenty six and the code is 5 5 5")
    ] == [
        "card",
        "cvv",
    ]


def test_redact_replaces_the_words_and_keeps_their_times() -> None:
    call = transcript(
        "what is the card number and the security code",
        "sure it's four one one one one one one one one one one one one one one one | and the code is 1 2 3",
    )
    clean = redact(call)
    customer, original = clean.channel("customer"), call.channel("customer")
    assert [(w.start, w.end) for w in customer.words] == [(w.start, w.end) for w in original.words]
    assert customer.segments[0].text == "sure it's [card]"
    assert customer.segments[1].text == "and the code is [cvv]"
    assert {w.text for w in customer.words[2:18]} == {"[card]"}
    assert "one" not in " ".join(w.text for w in customer.words)
    assert clean.channel("agent") == call.channel("agent")


def test_redact_with_given_spans_redacts_only_those() -> None:
    call = transcript("", "4111 1111 1111 1111 and john at example dot com")
    email_only = [s for s in find_pii(call.channel("customer")) if s.kind == "email"]
    clean = redact(call, email_only)
    assert clean.channel("customer").segments[0].text == "4111 1111 1111 1111 and [email]"


def test_a_segment_without_word_times_is_redacted_on_its_text() -> None:
    segment = Segment(0.0, 4.0, "my card is 4111 1111 1111 1111", ())
    call = Transcript((ChannelTranscript("customer", (segment,)),), "test", "test")
    clean = redact(call)
    assert clean.channel("customer").segments[0].text == "my card is [card]"
    assert clean.channel("customer").segments[0].words == ()


def test_span_json_carries_no_value() -> None:
    (span,) = find_pii(channel("4111 1111 1111 1111"))
    data = span.to_json()
    assert set(data) == {"speaker", "kind", "start", "end", "first_word", "last_word"}
    assert "4111" not in repr(data)
    assert isinstance(span, PiiSpan)


def test_a_hostile_run_of_digits_is_handled_in_linear_time() -> None:
    # 20,000 digit words: the card windows are bounded, so this returns promptly
    spoken = channel(" ".join(["7"] * 20_000))
    assert all(span.kind != "email" for span in find_pii(spoken))


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert not luhn_valid("0000000000000000") and not luhn_valid("12a4")
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765433")
    assert not iban_valid("GB82-WEST")


def test_a_number_introduced_as_ssn_or_phone_is_redacted_even_when_a_digit_was_misheard() -> None:
    assert kinds("my social security number is 34343188") == [("ssn", "34343188")]
    assert kinds("you can reach me on 1 2 3 4 5 6 7 8") == [("phone", "1 2 3 4 5 6 7 8")]
    assert kinds("the total is 1 2 3 4 5 6 7 8") == []
