"""Sentiment per side over time, from the VADER lexicon (``vaderSentiment`` on PyPI).

Why VADER: its 7,500-word lexicon and rules (negation, "but", intensifiers,
capitals) ship inside the wheel, so it installs from PyPI and runs with no
download and no model hub; it scores a sentence in microseconds on one core,
so a whole call costs nothing next to transcription; and a lexicon's score is
explainable to a QA lead ("terrible", "not happy") where a neural model's is
not. Its weakness (sarcasm, domain words) matters less on short spoken turns.

Each segment gets VADER's compound score (-1 … +1); each side gets a
word-weighted mean over the call and over each quarter of it, so a call that
starts angry and ends satisfied shows the change.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from callvault.speech.transcript import SPEAKERS, Speaker, Transcript

# VADER's own thresholds for a positive or negative compound score.
POSITIVE, NEGATIVE = 0.05, -0.05
QUARTERS = 4


@dataclass(frozen=True)
class ScoredSegment:
    speaker: Speaker
    start: float
    end: float
    score: float  # VADER compound, -1 .. +1


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
    scored = [
        ScoredSegment(channel.speaker, segment.start, segment.end, score_text(segment.text))
        for channel in transcript.channels
        for segment in channel.segments
        if segment.text.strip()
    ]
    return sorted(scored, key=lambda s: (s.start, s.speaker))


def summarise(transcript: Transcript, duration_s: float) -> list[SideSentiment]:
    """Each side's mean sentiment over the call and per quarter, weighted by words said."""
    weights = {
        (channel.speaker, segment.start): max(1, len(segment.text.split()))
        for channel in transcript.channels
        for segment in channel.segments
    }
    segments = score_segments(transcript)
    quarter_s = duration_s / QUARTERS if duration_s > 0 else 0.0
    sides = []
    for side in SPEAKERS:
        own = [(s, weights.get((s.speaker, s.start), 1)) for s in segments if s.speaker == side]
        quarters = tuple(
            _mean([(s, w) for s, w in own if _quarter(s.start, quarter_s) == q]) for q in range(QUARTERS)
        )
        sides.append(SideSentiment(side, _mean(own), quarters))
    return sides


def _quarter(at: float, quarter_s: float) -> int:
    return min(QUARTERS - 1, int(at // quarter_s)) if quarter_s > 0 else 0


def _mean(scored: list[tuple[ScoredSegment, int]]) -> float | None:
    weight = sum(w for _, w in scored)
    return sum(s.score * w for s, w in scored) / weight if weight else None
