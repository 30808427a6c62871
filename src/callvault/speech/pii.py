"""Find personal data in a channel's words and redact it from a transcript.

Kinds found (:data:`PII_KINDS`): payment card numbers (13–19 digits that pass
the Luhn check, written or spoken, split across words, pauses and segments),
card security codes (3–4 digits after "security code", "CVV" … on either
channel: the agent asks, the customer answers), US social security numbers
(``123-45-6789`` written, or nine spoken digits after "social security"),
IBANs (mod-97 checked), email addresses (written or spoken "… at … dot com")
and phone numbers (valid US/UK numbers or ``+`` international ones; 7-digit
local numbers only after "phone", "call me" …).

Precision matters as much as recall: an order number read out in the same
shape as a card is not a card unless it passes Luhn, and a number introduced as
an order/reference/account number is never taken for a phone number.

:func:`find_pii` returns :class:`PiiSpan` s: which speaker, what kind, the time
span (a player position, and what the redacted audio silences) and the word
indexes into :func:`channel_words`. :func:`redact` replaces those words' text
with a tag such as ``[card]``, keeping their times.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import phonenumbers

from callvault.speech.pii_text import find_emails, find_ibans
from callvault.speech.spoken_numbers import DigitRun, digit_runs, normalise
from callvault.speech.transcript import ChannelTranscript, Segment, Speaker, Transcript, Word

PiiKind = Literal["card", "cvv", "ssn", "iban", "email", "phone"]
PII_KINDS: tuple[PiiKind, ...] = ("card", "cvv", "ssn", "iban", "email", "phone")

# How far back (words on this channel, seconds on the other) a cue such as "security code" reaches.
CONTEXT_WORDS = 8
PROMPT_WINDOW_S = 20.0
# A pause this long on one side ends its utterance: a question the other side asked before that is old.
UTTERANCE_GAP_S = 1.5

_CVV_CUE = re.compile(
    r"\b(security code|security number on the back|cvv2?|cvc2?|card verification|verification code"
    r"|three digit|3 digit|four digit code|back of (the|your) card)\b"
)
_SSN_CUE = re.compile(r"\b(social security|ssn|s s n|social)\b")
_CARD_CUE = re.compile(r"\b(card|visa|mastercard|amex|american express|discover|credit|debit|long number)\b")
_PHONE_CUE = re.compile(r"\b(phone|mobile|cell|telephone|call me|reach me|call back|callback|number is)\b")
_NOT_PHONE_CUE = re.compile(
    r"\b(order|reference|ref|ticket|case|account|invoice|tracking|confirmation|policy|member|booking|customer)\b"
)
_WRITTEN_SSN = re.compile(r"\d{3}-\d{2}-\d{4}")


@dataclass(frozen=True)
class PiiSpan:
    speaker: Speaker
    kind: PiiKind
    start: float  # seconds from the start of the recording (the first word's start)
    end: float  # the last word's end
    first_word: int  # index into channel_words(channel), inclusive
    last_word: int  # inclusive

    def to_json(self) -> dict[str, object]:
        return {
            "speaker": self.speaker,
            "kind": self.kind,
            "start": self.start,
            "end": self.end,
            "first_word": self.first_word,
            "last_word": self.last_word,
        }


def channel_words(channel: ChannelTranscript) -> list[Word]:
    """The channel's words; a segment without word timings gives its text's words, timed evenly."""
    words: list[Word] = []
    for segment in channel.segments:
        words.extend(segment.words or _even_words(segment))
    return words


def find_pii(channel: ChannelTranscript, *, prompts: ChannelTranscript | None = None) -> list[PiiSpan]:
    """Every PII span on ``channel``; ``prompts`` (the other side) lets "what's the security code?" count."""
    words = channel_words(channel)
    texts = [word.text for word in words]
    cues = _Cues(texts, words, channel_words(prompts) if prompts else [])
    found: dict[int, tuple[int, PiiKind]] = {}  # first word -> (last word, kind)

    def claim(first: int, last: int, kind: PiiKind) -> None:
        if not any(a <= last and first <= b for a, (b, _) in found.items()):
            found[first] = (last, kind)

    for first, last in find_emails(texts):
        claim(first, last, "email")
    for first, last in find_ibans(texts):
        claim(first, last, "iban")
    for index, text in enumerate(texts):
        if _WRITTEN_SSN.fullmatch(normalise(text)) and _ssn_valid(re.sub(r"\D", "", text)):
            claim(index, index, "ssn")
    runs = digit_runs(words)
    for run in runs:
        for first, last in _cards(run, cues):
            claim(first, last, "card")
    for run in runs:
        for first, last, kind in _numbers(run, cues, found):
            claim(first, last, kind)
    return [
        PiiSpan(channel.speaker, kind, words[first].start, words[last].end, first, last)
        for first, (last, kind) in sorted(found.items())
    ]


class _Cues:
    """What was said just before a word: on this channel (last few words) and on the other (last seconds)."""

    def __init__(self, texts: Sequence[str], words: Sequence[Word], prompts: Sequence[Word]) -> None:
        self._texts = [normalise(text) for text in texts]
        self._words = words
        self._prompts = prompts

    def before(self, index: int) -> str:
        """This channel's last few words and the other side's words since this side last spoke."""
        at = self._words[index].start
        since = self._utterance_before(index)
        other = " ".join(
            normalise(word.text)
            for word in self._prompts
            if since <= word.start <= at and at - word.end <= PROMPT_WINDOW_S
        )
        return f"{other} | {self.own_before(index)}"

    def _utterance_before(self, index: int) -> float:
        """The end of this side's previous utterance (the words before a pause of UTTERANCE_GAP_S)."""
        k = index
        while k > 0 and self._words[k].start - self._words[k - 1].end < UTTERANCE_GAP_S:
            k -= 1
        return self._words[k - 1].end if k > 0 else 0.0

    def own_before(self, index: int) -> str:
        return " ".join(self._texts[max(0, index - CONTEXT_WORDS) : index])


def _cards(run: DigitRun, cues: _Cues) -> list[tuple[int, int]]:
    """Card numbers in a run: the whole run if it is one, else Luhn-valid windows at its edges."""
    whole = run.text
    if 13 <= len(whole) <= 19 and (luhn_valid(whole) or _CARD_CUE.search(cues.own_before(run.first))):
        # a card cue rescues a number whose checksum fails: the recogniser misheard one digit of a card
        if luhn_valid(whole) or not _NOT_PHONE_CUE.search(cues.own_before(run.first)):
            return [(run.first, run.last)]
    if _NOT_PHONE_CUE.search(cues.own_before(run.first)):
        return []  # an order or reference number: only a whole run that passes Luhn is taken for a card
    edge = [
        (first, last)
        for first, last, digits in run.windows(19)
        if 13 <= len(digits) <= 19
        and digits[0]
        in "23456"  # issuer ranges of bank cards; a window inside a longer run must look like one
        and (first == run.first or last == run.last)
        and luhn_valid(digits)
    ]
    edge.sort(key=lambda span: span[0] - span[1])  # longest first
    chosen: list[tuple[int, int]] = []
    for first, last in edge:
        if all(last < a or b < first for a, b in chosen):
            chosen.append((first, last))
    return chosen


def _numbers(
    run: DigitRun, cues: _Cues, found: dict[int, tuple[int, PiiKind]]
) -> Iterable[tuple[int, int, PiiKind]]:
    """SSN, phone or security code for a run no card claimed."""
    if any(first <= run.last and run.first <= last for first, (last, _) in found.items()):
        return []
    digits, context = run.text, cues.before(run.first)
    own = cues.own_before(run.first)
    if _SSN_CUE.search(context) and (_ssn_valid(digits) or 7 <= len(digits) <= 10):
        # after "social security", a number a digit short or long is still the SSN, misheard
        return [(run.first, run.last, "ssn")]
    if 3 <= len(digits) <= 4 and (_CVV_CUE.search(context) or _after_card_code(own, found, run)):
        return [(run.first, run.last, "cvv")]
    if _NOT_PHONE_CUE.search(own) and not run.plus:
        return []
    if _phone_valid(digits, run.plus) or (7 <= len(digits) <= 15 and _PHONE_CUE.search(context)):
        # introduced as a phone number: taken as one even if a misheard digit makes it invalid
        return [(run.first, run.last, "phone")]
    return []


def _after_card_code(own: str, found: dict[int, tuple[int, PiiKind]], run: DigitRun) -> bool:
    """ "… and the code is 123" right after a card number on the same channel."""
    card_before = any(kind == "card" and last < run.first for last, kind in found.values())
    return card_before and bool(re.search(r"\b(code|cvv|on the back)\b", own))


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit() or digits[0] == "0":
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _ssn_valid(digits: str) -> bool:
    """SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000."""
    if len(digits) != 9 or not digits.isdigit():
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


def _phone_valid(digits: str, plus: bool) -> bool:
    if not 7 <= len(digits) <= 15:
        return False
    if len(digits) == 11 and digits.startswith("07"):  # UK mobile, including the drama range
        return True
    candidates = [("+" + digits, None)] if plus else [(digits, "US"), (digits, "GB")]
    for text, region in candidates:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(text, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


def redact(transcript: Transcript, spans: Sequence[PiiSpan] | None = None) -> Transcript:
    """The transcript with every PII word's text replaced by ``[kind]``; times and everything else kept."""
    if spans is None:
        spans = [
            span
            for channel in transcript.channels
            for span in find_pii(channel, prompts=_other(transcript, channel))
        ]
    channels = tuple(
        _redact_channel(channel, [s for s in spans if s.speaker == channel.speaker])
        for channel in transcript.channels
    )
    return replace(transcript, channels=channels)


def _other(transcript: Transcript, channel: ChannelTranscript) -> ChannelTranscript:
    return transcript.channel("customer" if channel.speaker == "agent" else "agent")


def _redact_channel(channel: ChannelTranscript, spans: Sequence[PiiSpan]) -> ChannelTranscript:
    if not spans:
        return channel
    tag_of: dict[int, tuple[int, str]] = {}  # word index -> (span id, tag)
    for number, span in enumerate(spans):
        for index in range(span.first_word, span.last_word + 1):
            tag_of[index] = (number, f"[{span.kind}]")
    segments: list[Segment] = []
    index = 0
    for segment in channel.segments:
        words = list(segment.words or _even_words(segment))
        redacted = [
            replace(word, text=tag_of[index + k][1]) if index + k in tag_of else word
            for k, word in enumerate(words)
        ]
        touched = any(index + k in tag_of for k in range(len(words)))
        text = (
            _joined(redacted, [tag_of.get(index + k, (None, ""))[0] for k in range(len(words))])
            if touched
            else segment.text
        )
        index += len(words)
        segments.append(replace(segment, text=text, words=tuple(redacted) if segment.words else ()))
    return replace(channel, segments=tuple(segments))


def _joined(words: Sequence[Word], span_ids: Sequence[int | None]) -> str:
    """The segment text from its words, one tag per span rather than one per redacted word."""
    parts: list[str] = []
    for k, word in enumerate(words):
        if span_ids[k] is not None and k > 0 and span_ids[k - 1] == span_ids[k]:
            continue
        parts.append(word.text.strip())
    return " ".join(part for part in parts if part)


def _even_words(segment: Segment) -> list[Word]:
    tokens = segment.text.split()
    if not tokens:
        return []
    step = (segment.end - segment.start) / len(tokens)
    return [
        Word(segment.start + k * step, segment.start + (k + 1) * step, token, 1.0)
        for k, token in enumerate(tokens)
    ]
