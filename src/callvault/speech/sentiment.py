"""Sentiment per side over time, from the VADER lexicon (``vaderSentiment`` on PyPI).

Why VADER: its 7,500-word lexicon and rules (negation, "but", intensifiers,
capitals) ship inside the wheel, so it installs from PyPI and runs with no
download and no model hub; it scores a sentence in microseconds on one core,
so a whole call costs nothing next to transcription; and a lexicon's score is
explainable to a QA lead ("terrible", "not happy") where a neural model's is
not. Its weakness (sarcasm, domain words) matters less on short spoken turns.

Each sentence gets VADER's compound score (-1 … +1); each side gets a
word-weighted mean over the call and over each quarter of it, so a call that
starts angry and ends satisfied shows the change.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from callvault.speech.transcript import SPEAKERS, Segment, Speaker, Transcript, Word

# VADER's own thresholds for a positive or negative compound score.
POSITIVE, NEGATIVE = 0.05, -0.05
QUARTERS = 4
# A pause this long inside a recogniser's segment ends a sentence even without punctuation.
PAUSE_S = 0.8


@dataclass(frozen=True)
class ScoredSegment:
    speaker: Speaker
    start: float
    end: float
    score: float  # VADER compound, -1 .. +1
    words: int  # how many words: the sentence's weight in a side's mean


@dataclass(frozen=True)
class SideSentiment:
    speaker: Speaker
    score: float | None  # word-weighted mean over the call; None when the side said nothing
    quarters: tuple[float | None, ...]  # the same per quarter of the call

    @property
    def label(self) -> str:
        return label(self.score)


def label(score: float | None) -> str:
    if score is None:
        return "none"
    return "positive" if score >= POSITIVE else "negative" if score <= NEGATIVE else "neutral"


@functools.cache
def _analyser() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()  # reads the lexicon from the installed package once


def score_text(text: str) -> float:
    return float(_analyser().polarity_scores(text)["compound"])


def score_segments(transcript: Transcript) -> list[ScoredSegment]:
    """Each sentence of each side scored, in time order.

    A recogniser's segment can hold several sentences across a pause (a complaint, then thanks),
    so segments with word timings are split at sentence ends and long pauses, and each sentence
    gets its own score.
    """
    scored = [
        ScoredSegment(channel.speaker, start, end, score_text(text), words)
        for channel in transcript.channels
        for segment in channel.segments
        for start, end, text, words in _sentences(segment)
    ]
    return sorted(scored, key=lambda s: (s.start, s.speaker))


def _sentences(segment: Segment) -> list[tuple[float, float, str, int]]:
    """(start, end, text, word count) of each sentence of ``segment``."""
    if not segment.words:
        text = segment.text.strip()
        return [(segment.start, segment.end, text, len(text.split()))] if text else []
    sentences: list[tuple[float, float, str, int]] = []
    current: list[Word] = []
    for word in segment.words:
        if current and word.start - current[-1].end > PAUSE_S:
            sentences.append(_sentence(current))
            current = []
        current.append(word)
        if word.text.strip().endswith((".", "?", "!")):
            sentences.append(_sentence(current))
            current = []
    if current:
        sentences.append(_sentence(current))
    return sentences


def _sentence(words: list[Word]) -> tuple[float, float, str, int]:
    return words[0].start, words[-1].end, " ".join(w.text.strip() for w in words), len(words)


def summarise(transcript: Transcript, duration_s: float) -> list[SideSentiment]:
    """Each side's mean sentiment over the call and per quarter, weighted by words said."""
    segments = score_segments(transcript)
    quarter_s = duration_s / QUARTERS if duration_s > 0 else 0.0
    sides = []
    for side in SPEAKERS:
        own = [s for s in segments if s.speaker == side]
        quarters = tuple(
            _mean([s for s in own if _quarter(s.start, quarter_s) == q]) for q in range(QUARTERS)
        )
        sides.append(SideSentiment(side, _mean(own), quarters))
    return sides


def _quarter(at: float, quarter_s: float) -> int:
    return min(QUARTERS - 1, int(at // quarter_s)) if quarter_s > 0 else 0


def _mean(scored: list[ScoredSegment]) -> float | None:
    weight = sum(max(1, s.words) for s in scored)
    return sum(s.score * max(1, s.words) for s in scored) / weight if weight else None
