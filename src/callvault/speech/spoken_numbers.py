"""Digits as people say them and as recognisers write them, gathered into runs.

A card number reaches a transcript in many shapes: ``4111 1111 1111 1111``,
``4111-1111-1111-1111``, ``four one one one …``, ``double four``, ``oh`` for
zero, a pause that splits it across two segments, or a mix of all of these.
:func:`digit_runs` turns a channel's words into runs of consecutive digit-bearing
words (fillers such as "uh" or "and" and pauses of a few seconds allowed between
them), each run knowing which words it covers and which digits each word gives,
so the PII detectors can test windows of a run against a checksum and redact
exactly the words that carry the number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from callvault.speech.transcript import Word

UNITS = {
    "zero": "0",
    "nought": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
# "oh" and "o" are zero only next to other digits ("four oh one"), never alone.
ZERO_SOUNDS = frozenset({"oh", "o"})
TEENS = {
    "ten": "10",
    "eleven": "11",
    "twelve": "12",
    "thirteen": "13",
    "fourteen": "14",
    "fifteen": "15",
    "sixteen": "16",
    "seventeen": "17",
    "eighteen": "18",
    "nineteen": "19",
}
TENS = {
    "twenty": "2",
    "thirty": "3",
    "forty": "4",
    "fifty": "5",
    "sixty": "6",
    "seventy": "7",
    "eighty": "8",
    "ninety": "9",
}
REPEATS = {"double": 2, "triple": 3}
# Words people put between digit groups without ending the number.
FILLERS = frozenset({"uh", "um", "er", "erm", "ah", "and", "then", "dash", "hyphen", "space", "-"})
# A pause longer than this between two digit words ends the run.
MAX_GAP_S = 4.0

# Recognisers write digit groups as "4111", "4111-1111", "(415)", and mid-number as "-5" or ".4".
_WRITTEN = re.compile(r"[+\-.]?\(?\d[\d\-./()]*")
_EDGE_PUNCTUATION = ",.;:!?\"'()[]"


@dataclass(frozen=True)
class DigitRun:
    """Consecutive words that read out digits: ``words[i]`` gives ``digits[i]`` ('' for a filler)."""

    first: int  # index of the run's first word in the channel's word list
    digits: tuple[str, ...]
    plus: bool  # written with a leading "+" (an international phone number)

    @property
    def last(self) -> int:
        return self.first + len(self.digits) - 1

    @property
    def text(self) -> str:
        return "".join(self.digits)

    def windows(self, max_digits: int) -> list[tuple[int, int, str]]:
        """Word-aligned windows of at most ``max_digits`` digits, starting and ending on a digit word."""
        found: list[tuple[int, int, str]] = []
        for i, head in enumerate(self.digits):
            if not head:
                continue
            joined = ""
            for j in range(i, len(self.digits)):
                joined += self.digits[j]
                if len(joined) > max_digits:
                    break  # bounded: a hostile run of thousands of digits costs linear time
                if self.digits[j]:
                    found.append((self.first + i, self.first + j, joined))
        return found


def normalise(text: str) -> str:
    """Lower case without surrounding punctuation: the form every matcher compares."""
    return text.strip().strip(_EDGE_PUNCTUATION).lower()


def word_digits(words: Sequence[str], index: int) -> str | None:
    """The digits word ``index`` reads out, in the context of its neighbours; None if it is no number."""
    token = normalise(words[index])
    if not token:
        return None
    written = _written_digits(words[index].strip().strip(",;:!?\"'"))
    if written is not None:
        return written
    parts = [part for part in token.split("-") if part]
    if len(parts) > 1:
        spoken = [_spoken_part(parts, k) for k in range(len(parts))]
        return None if None in spoken else "".join(part or "" for part in spoken)
    return _spoken(words, index, token)


def _written_digits(token: str) -> str | None:
    if not _WRITTEN.fullmatch(token.rstrip(".")):
        return None
    return re.sub(r"\D", "", token)


def _spoken_part(parts: Sequence[str], k: int) -> str | None:
    part = parts[k]
    if part in UNITS:
        return UNITS[part]
    if part in TEENS:
        return TEENS[part]
    if part in TENS:
        following = parts[k + 1] if k + 1 < len(parts) else ""
        return TENS[part] if following in UNITS else TENS[part] + "0"
    if part in ZERO_SOUNDS:
        return "0"
    if part.isdigit():
        return part
    return None


def _spoken(words: Sequence[str], index: int, token: str) -> str | None:
    if token in UNITS:
        return UNITS[token]
    if token in TEENS:
        return TEENS[token]
    if token in TENS:
        following = normalise(words[index + 1]) if index + 1 < len(words) else ""
        # "forty one" is 41, but a lone "forty" is 40
        return TENS[token] if following in UNITS else TENS[token] + "0"
    if token in ZERO_SOUNDS:
        return "0" if _next_to_digit(words, index) else None
    if token in REPEATS and index + 1 < len(words):
        following = normalise(words[index + 1])
        digit = UNITS.get(following) or ("0" if following in ZERO_SOUNDS else None)
        # "double four" is 44: this word gives one 4, the next word gives the other(s)
        return digit * (REPEATS[token] - 1) if digit else None
    if token == "hundred" and index > 0 and normalise(words[index - 1]) in UNITS:
        return "00"
    return None


def _next_to_digit(words: Sequence[str], index: int) -> bool:
    """Whether a run of "oh"s around ``index`` touches a real digit word on either side."""
    for step in (-1, 1):
        k = index + step
        while 0 <= k < len(words) and normalise(words[k]) in ZERO_SOUNDS:
            k += step
        if 0 <= k < len(words) and _is_digit_word(normalise(words[k])):
            return True
    return False


def _is_digit_word(token: str) -> bool:
    return (
        token in UNITS
        or token in TEENS
        or token in TENS
        or token in REPEATS
        or _written_digits(token) is not None
    )


def digit_runs(words: Sequence[Word]) -> list[DigitRun]:
    """The runs of digit-bearing words in ``words`` (fillers inside a run give '')."""
    texts = [word.text for word in words]
    runs: list[DigitRun] = []
    current: list[str] = []
    first = 0
    last_digit_end = 0.0
    for index, word in enumerate(words):
        digits = word_digits(texts, index)
        if digits is not None:
            if current and word.start - last_digit_end > MAX_GAP_S:
                runs.append(_close(first, current, texts))
                current = []
            if not current:
                first = index
            current.append(digits)
            last_digit_end = word.end
        elif current and normalise(word.text) in FILLERS:
            current.append("")
        elif current:
            runs.append(_close(first, current, texts))
            current = []
    if current:
        runs.append(_close(first, current, texts))
    return runs


def _close(first: int, digits: list[str], texts: Sequence[str]) -> DigitRun:
    while digits and not digits[-1]:  # trailing fillers are not part of the number
        digits.pop()
    return DigitRun(first=first, digits=tuple(digits), plus=texts[first].strip().startswith("+"))
