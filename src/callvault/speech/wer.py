"""Word error rate: how far a transcript is from the words known to have been said.

Used to measure recognisers (``bench/transcription.py``) and to check the
transcription journey end to end. Both sides are normalised the way spoken
text is compared: lower case, punctuation dropped, digits spelled as words
("4" and "four" are the same spoken word).
"""

from __future__ import annotations

import re

_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TOKEN = re.compile(r"[a-z0-9']+")


def normalise(text: str) -> list[str]:
    words: list[str] = []
    for token in _TOKEN.findall(text.lower().replace("-", " ")):
        token = token.strip("'")
        if token.isdigit():
            words.extend(_DIGITS[int(digit)] for digit in token)
        elif token:
            words.append(token)
    return words


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, words in the reference)."""
    ref, hyp = normalise(reference), normalise(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, heard in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (word != heard))
        previous = current
    return previous[-1], len(ref)


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Edit distance over reference length (1.0 when nothing was said but something was heard)."""
    errors, length = word_errors(reference, hypothesis)
    if length == 0:
        return 0.0 if errors == 0 else 1.0
    return errors / length
