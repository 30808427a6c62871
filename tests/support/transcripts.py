"""Transcripts built from known sentences, with word times, for search and display tests."""

from __future__ import annotations

from callvault.speech.transcript import ChannelTranscript, Segment, Speaker, Transcript, Word

WORD_SECONDS = 0.4


def sentence(start: float, text: str) -> Segment:
    """One segment of ``text`` starting at ``start``, each word WORD_SECONDS long."""
    words = tuple(
        Word(start + i * WORD_SECONDS, start + (i + 1) * WORD_SECONDS, f" {word}", 0.9)
        for i, word in enumerate(text.split())
    )
    return Segment(start, words[-1].end if words else start, f" {text}", words)


def transcript(
    agent: list[tuple[float, str]] | None = None, customer: list[tuple[float, str]] | None = None
) -> Transcript:
    """A transcript from ``(start, sentence)`` pairs per side."""
    sides: list[tuple[Speaker, list[tuple[float, str]]]] = [
        ("agent", agent or []),
        ("customer", customer or []),
    ]
    return Transcript(
        channels=tuple(
            ChannelTranscript(speaker, tuple(sentence(start, text) for start, text in lines))
            for speaker, lines in sides
        ),
        engine="test",
        model="known-text",
    )


def word_at(start: float, index: int) -> tuple[float, float]:
    """The times of the ``index``-th word of a sentence starting at ``start``."""
    return start + index * WORD_SECONDS, start + (index + 1) * WORD_SECONDS
