"""Phrase spotting: which categories of phrases each side said, where; script adherence.

A category (complaint, cancellation, competitor, the recording disclosure …)
is a list of phrases and the side that must say them (agent, customer or
any). Matching is on normalised words (lower case, punctuation and
apostrophes dropped, "um"/"uh" ignored) and tolerant: a phrase word of five
letters or more matches a transcript word one edit away, since a recogniser
writes "cancelation" for "cancellation" and "refunded" for "refund" is a
different word (so only one edit, and only for longer words).

A category with ``within_s`` is a script requirement: the agent must say one
of its phrases within that many seconds of the call's start;
:func:`adherence` reports each requirement met or missed, with the time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from callvault.speech.transcript import Speaker, Transcript, Word

Party = Literal["agent", "customer", "any"]
PARTIES: tuple[Party, ...] = ("agent", "customer", "any")
_IGNORED = frozenset({"um", "uh", "er", "erm", "ah", "hmm", "mm"})
MAX_PHRASE_WORDS = 12


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    phrases: tuple[str, ...]
    speaker: Party = "any"
    within_s: float | None = None  # set: a required phrase, due within this many seconds of the start


@dataclass(frozen=True)
class Hit:
    category_id: int
    speaker: Speaker
    phrase: str
    start: float
    end: float


@dataclass(frozen=True)
class Adherence:
    category_id: int
    name: str
    within_s: float
    met: bool
    at: float | None  # when the earliest phrase was said (even if too late)


def tokens(text: str) -> list[str]:
    """The matching form of ``text``: lower-case words without punctuation or fillers."""
    words = (
        re.sub(r"[^\w]", "", word.replace("'", "").replace("\u2019", "")).lower() for word in text.split()
    )
    return [word for word in words if word and word not in _IGNORED]


def validate_phrase(phrase: str) -> str:
    """A phrase as stored; ValueError when it has no words or too many."""
    count = len(tokens(phrase))
    if count == 0:
        raise ValueError(f"phrase {phrase!r} has no words to match")
    if count > MAX_PHRASE_WORDS:
        raise ValueError(f"phrase {phrase!r} has {count} words; at most {MAX_PHRASE_WORDS}")
    return " ".join(phrase.split())


def spot(transcript: Transcript, categories: Sequence[Category]) -> list[Hit]:
    """Every place a category's phrase was said by the category's side, in time order."""
    hits: list[Hit] = []
    for channel in transcript.channels:
        words = [(token, word) for word in channel.words for token in tokens(word.text)[:1]]
        for category in categories:
            if category.speaker not in ("any", channel.speaker):
                continue
            for phrase in category.phrases:
                for start, end in _occurrences(tokens(phrase), words):
                    hits.append(Hit(category.id, channel.speaker, phrase, start, end))
    return sorted(hits, key=lambda hit: (hit.start, hit.category_id))


def _occurrences(wanted: Sequence[str], words: Sequence[tuple[str, Word]]) -> list[tuple[float, float]]:
    if not wanted:
        return []
    found: list[tuple[float, float]] = []
    for i in range(len(words) - len(wanted) + 1):
        if all(_same(wanted[k], words[i + k][0]) for k in range(len(wanted))):
            found.append((words[i][1].start, words[i + len(wanted) - 1][1].end))
    return found


def _same(wanted: str, heard: str) -> bool:
    if wanted == heard:
        return True
    return len(wanted) >= 5 and abs(len(wanted) - len(heard)) <= 1 and _one_edit(wanted, heard)


def _one_edit(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by exactly one insertion, deletion or substitution."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    for i in range(len(long_)):
        if long_[:i] + long_[i + 1 :] == short:
            return True
    return False


def adherence(hits: Sequence[Hit], categories: Sequence[Category]) -> list[Adherence]:
    """Each script requirement (a category with ``within_s``): said in time by its side or not."""
    report: list[Adherence] = []
    for category in categories:
        if category.within_s is None:
            continue
        times = [hit.start for hit in hits if hit.category_id == category.id]
        first = min(times) if times else None
        met = first is not None and first <= category.within_s
        report.append(Adherence(category.id, category.name, category.within_s, met, first))
    return report
