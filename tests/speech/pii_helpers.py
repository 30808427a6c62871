"""Build channels from plain sentences for the PII and phrase tests: "|" starts a new segment."""

from __future__ import annotations

from callvault.speech.transcript import ChannelTranscript, Segment, Speaker, Transcript, Word

WORD_S = 0.4


def channel(
    text: str, speaker: Speaker = "customer", *, start: float = 0.0, gap_s: float = 1.0
) -> ChannelTranscript:
    segments: list[Segment] = []
    at = start
    for part in text.split("|"):
        words: list[Word] = []
        for token in part.split():
            words.append(Word(at, at + WORD_S - 0.05, token, 0.9))
            at += WORD_S
        if words:
            segments.append(
                Segment(words[0].start, words[-1].end, " ".join(w.text for w in words), tuple(words))
            )
        at += gap_s
    return ChannelTranscript(speaker=speaker, segments=tuple(segments))


def transcript(agent: str, customer: str) -> Transcript:
    return Transcript(
        channels=(channel(agent, "agent"), channel(customer, "customer")), engine="test", model="test"
    )


def redacted_words(channel_: ChannelTranscript, first: int, last: int) -> str:
    return " ".join(word.text for word in channel_.words[first : last + 1])
