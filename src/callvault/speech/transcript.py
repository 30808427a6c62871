"""The transcript of one recording: per channel, segments of timed words.

Agent and customer are on separate channels of the archive (agent left,
customer right), so who said what is exact: each channel is transcribed on its
own and tagged with its speaker. Times are seconds from the start of the
recording (the archive's time base), so a word's time is a player position.

The JSON form (:meth:`Transcript.to_json` / :meth:`Transcript.from_json`) is
what is stored, encrypted, in the vault and what the API returns per channel;
``from_json`` treats its input as untrusted and raises ``ValueError`` with a
precise message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

Speaker = Literal["agent", "customer"]
SPEAKERS: tuple[Speaker, ...] = ("agent", "customer")
# The archive's channel for each speaker (0 = left, 1 = right).
CHANNEL_OF: Mapping[Speaker, int] = {"agent": 0, "customer": 1}


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str
    confidence: float  # 0.0 .. 1.0, the engine's word probability


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class ChannelTranscript:
    speaker: Speaker
    segments: tuple[Segment, ...]
    language: str = "en"
    # Why the channel's speech was not transcribed although there was speech: e.g. "speech not
    # recognised as English (en): …" (another language); its words, guesses, are not kept.
    unrecognised: str | None = None

    @property
    def words(self) -> tuple[Word, ...]:
        return tuple(word for segment in self.segments for word in segment.words)

    @property
    def text(self) -> str:
        return " ".join(segment.text.strip() for segment in self.segments if segment.text.strip())


def joined(speaker: Speaker, windows: Sequence[tuple[float, float, ChannelTranscript]]) -> ChannelTranscript:
    """One channel heard in consecutive windows ``(start, end, transcript from the window's 0)``,
    as one transcript in recording time. A window not recognised keeps no words; its reason is
    kept, with the window's times when the call had more than one."""
    segments: list[Segment] = []
    reasons: list[str] = []
    for start, end, part in windows:
        segments.extend(_shifted(segment, start) for segment in part.segments)
        if part.unrecognised:
            span = f"{_clock(start)}-{_clock(end)}: " if len(windows) > 1 else ""
            reasons.append(span + part.unrecognised)
    language = windows[0][2].language if windows else "en"
    return ChannelTranscript(speaker, tuple(segments), language, "; ".join(reasons) or None)


def _shifted(segment: Segment, by: float) -> Segment:
    if not by:
        return segment
    words = tuple(
        Word(round(w.start + by, 3), round(w.end + by, 3), w.text, w.confidence) for w in segment.words
    )
    return Segment(round(segment.start + by, 3), round(segment.end + by, 3), segment.text, words)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{rest:02d}" if minutes >= 60 else f"{minutes}:{rest:02d}"


@dataclass(frozen=True)
class Transcript:
    channels: tuple[ChannelTranscript, ...]
    engine: str  # e.g. "faster-whisper"
    model: str  # e.g. "tiny.en"

    def channel(self, speaker: Speaker) -> ChannelTranscript:
        for channel in self.channels:
            if channel.speaker == speaker:
                return channel
        return ChannelTranscript(speaker=speaker, segments=())

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "model": self.model,
            "channels": [_channel_json(channel) for channel in self.channels],
        }

    @classmethod
    def from_json(cls, data: object) -> Transcript:
        body = _mapping(data, "transcript")
        channels = _sequence(body.get("channels"), "transcript.channels")
        parsed = tuple(_parse_channel(item, f"channels[{i}]") for i, item in enumerate(channels))
        speakers = [channel.speaker for channel in parsed]
        if len(set(speakers)) != len(speakers):
            raise ValueError("transcript.channels: a speaker appears twice")
        return cls(
            channels=parsed,
            engine=_text(body.get("engine"), "transcript.engine"),
            model=_text(body.get("model"), "transcript.model"),
        )


@dataclass(frozen=True)
class Turn:
    """One stretch of one speaker in the merged, turn-by-turn view."""

    speaker: Speaker
    start: float
    end: float
    text: str


def turns(transcript: Transcript, *, join_gap_s: float = 1.0) -> list[Turn]:
    """Both channels merged in time order; a speaker's segments closer than ``join_gap_s`` join."""
    tagged = sorted(
        ((segment, channel.speaker) for channel in transcript.channels for segment in channel.segments),
        key=lambda pair: (pair[0].start, pair[0].end),
    )
    merged: list[Turn] = []
    for segment, speaker in tagged:
        text = segment.text.strip()
        if not text:
            continue
        last = merged[-1] if merged else None
        if last and last.speaker == speaker and segment.start - last.end <= join_gap_s:
            merged[-1] = Turn(speaker, last.start, max(last.end, segment.end), f"{last.text} {text}")
        else:
            merged.append(Turn(speaker, segment.start, segment.end, text))
    return merged


def _channel_json(channel: ChannelTranscript) -> dict[str, Any]:
    return {
        "speaker": channel.speaker,
        "language": channel.language,
        "unrecognised": channel.unrecognised,
        "segments": [
            {
                "start": segment.start,
                "end": segment.end,
                "text": segment.text,
                "words": [
                    {"start": w.start, "end": w.end, "text": w.text, "confidence": w.confidence}
                    for w in segment.words
                ],
            }
            for segment in channel.segments
        ],
    }


def _parse_channel(data: object, where: str) -> ChannelTranscript:
    body = _mapping(data, where)
    speaker = body.get("speaker")
    if speaker not in SPEAKERS:
        raise ValueError(f"{where}.speaker: expected one of {', '.join(SPEAKERS)}, got {speaker!r}")
    segments = _sequence(body.get("segments"), f"{where}.segments")
    unrecognised = body.get("unrecognised")
    return ChannelTranscript(
        speaker=cast(Speaker, speaker),
        segments=tuple(_parse_segment(item, f"{where}.segments[{i}]") for i, item in enumerate(segments)),
        language=_text(body.get("language", "en"), f"{where}.language"),
        unrecognised=None if unrecognised is None else _text(unrecognised, f"{where}.unrecognised"),
    )


def _parse_segment(data: object, where: str) -> Segment:
    body = _mapping(data, where)
    start, end = _time(body.get("start"), f"{where}.start"), _time(body.get("end"), f"{where}.end")
    if end < start:
        raise ValueError(f"{where}: ends ({end}) before it starts ({start})")
    words = _sequence(body.get("words", []), f"{where}.words")
    return Segment(
        start=start,
        end=end,
        text=_text(body.get("text"), f"{where}.text"),
        words=tuple(_parse_word(item, f"{where}.words[{i}]") for i, item in enumerate(words)),
    )


def _parse_word(data: object, where: str) -> Word:
    body = _mapping(data, where)
    start, end = _time(body.get("start"), f"{where}.start"), _time(body.get("end"), f"{where}.end")
    if end < start:
        raise ValueError(f"{where}: ends ({end}) before it starts ({start})")
    confidence = _number(body.get("confidence", 1.0), f"{where}.confidence")
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"{where}.confidence: {confidence} is outside 0..1")
    return Word(start=start, end=end, text=_text(body.get("text"), f"{where}.text"), confidence=confidence)


def _mapping(data: object, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected an object, got {type(data).__name__}")
    return cast(Mapping[str, Any], data)


def _sequence(data: object, where: str) -> Sequence[object]:
    if not isinstance(data, list | tuple):
        raise ValueError(f"{where}: expected a list, got {type(data).__name__}")
    return cast(Sequence[object], data)


def _text(data: object, where: str) -> str:
    if not isinstance(data, str):
        raise ValueError(f"{where}: expected a string, got {type(data).__name__}")
    return data


def _number(data: object, where: str) -> float:
    if isinstance(data, bool) or not isinstance(data, int | float) or not math.isfinite(data):
        raise ValueError(f"{where}: expected a finite number, got {data!r}")
    return float(data)


def _time(data: object, where: str) -> float:
    value = _number(data, where)
    if value < 0:
        raise ValueError(f"{where}: a time cannot be negative ({value})")
    return value
