"""Per-call talk metrics from each side's voice activity and the transcript.

Agent and customer are on separate channels, so who spoke when is measured,
not guessed: :func:`activity_from_levels` turns a channel's level frames (the
archive's waveform peaks, 50 ms buckets on a 60 dB scale) into speech
intervals; a mixed (mono) archive has no per-side audio, so
:func:`activity_from_words` uses the transcript's word times instead.

:func:`talk_metrics` then gives talk time per side, silence, overtalk (both
speaking), the longest monologue per side, the agent's share of the talking,
hold time (from the recording's hold events, excluded from everything else:
music on hold is not the agent talking), interruptions and words per minute of
each side's own talk time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from callvault.speech.transcript import SPEAKERS, ChannelTranscript, Speaker

Interval = tuple[float, float]

# A level byte of the waveform peaks (0 = -60 dBFS, 255 = full scale): speech is louder than -40 dBFS.
SPEECH_LEVEL = round((60.0 - 40.0) / 60.0 * 255)
# Pauses shorter than this inside speech are still talking (between words, a breath).
BRIDGE_S = 0.35
# A burst shorter than this is a click or a cough, not talk.
MIN_SPEECH_S = 0.1
# A monologue goes on through the other side's "mm-hm" shorter than this, and pauses shorter than MONOLOGUE_GAP_S.
BACKCHANNEL_S = 1.0
MONOLOGUE_GAP_S = 2.0
# Starting to talk while the other side has been talking this long and goes on is an interruption.
INTERRUPT_OVERLAP_S = 0.5


@dataclass(frozen=True)
class TalkMetrics:
    duration_s: float
    agent_talk_s: float
    customer_talk_s: float
    silence_s: float
    overtalk_s: float
    hold_s: float
    agent_longest_monologue_s: float
    customer_longest_monologue_s: float
    agent_talk_ratio: float | None  # agent talk / all talk; None when nobody spoke
    agent_interruptions: int
    customer_interruptions: int
    agent_wpm: float | None  # words per minute of the agent's own talk time
    customer_wpm: float | None

    def to_json(self) -> dict[str, float | int | None]:
        return {
            key: (round(value, 3) if isinstance(value, float) else value)
            for key, value in asdict(self).items()
        }


def activity_from_levels(
    levels: bytes | Sequence[int], bucket_s: float, threshold: int = SPEECH_LEVEL
) -> list[Interval]:
    """Speech intervals of one channel from its level frames."""
    raw: list[Interval] = []
    start: float | None = None
    for index, level in enumerate(levels):
        if level >= threshold and start is None:
            start = index * bucket_s
        elif level < threshold and start is not None:
            raw.append((start, index * bucket_s))
            start = None
    if start is not None:
        raw.append((start, len(levels) * bucket_s))
    return _tidy(raw)


def activity_from_words(channel: ChannelTranscript) -> list[Interval]:
    """Speech intervals of one side from its words' times (when the archive is mixed)."""
    return _tidy([(word.start, word.end) for word in channel.words if word.end > word.start])


def _tidy(intervals: Iterable[Interval]) -> list[Interval]:
    bridged = merge(intervals, gap=BRIDGE_S)
    return [(a, b) for a, b in bridged if b - a >= MIN_SPEECH_S]


def merge(intervals: Iterable[Interval], gap: float = 0.0) -> list[Interval]:
    """Sorted union of ``intervals``; ones closer than ``gap`` join."""
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start - merged[-1][1] <= gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def total(intervals: Iterable[Interval]) -> float:
    return sum(end - start for start, end in merge(intervals))


def intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The times in both ``a`` and ``b`` (each a sorted, merged list)."""
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def subtract(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    """The times in ``a`` but not in ``b`` (each a sorted, merged list)."""
    out: list[Interval] = []
    for start, end in a:
        cursor = start
        for cut_start, cut_end in b:
            if cut_end <= cursor or cut_start >= end:
                continue
            if cut_start > cursor:
                out.append((cursor, cut_start))
            cursor = max(cursor, cut_end)
        if cursor < end:
            out.append((cursor, end))
    return out


def talk_metrics(
    duration_s: float,
    activity: dict[Speaker, Sequence[Interval]],
    holds: Sequence[Interval] = (),
    words: dict[Speaker, int] | None = None,
) -> TalkMetrics:
    """The metrics of one call of ``duration_s`` seconds from each side's speech intervals."""
    hold = merge((max(0.0, a), min(duration_s, b)) for a, b in holds if b > a)
    speech = {side: subtract(merge(activity.get(side, ())), hold) for side in SPEAKERS}
    agent, customer = speech["agent"], speech["customer"]
    agent_talk, customer_talk = total(agent), total(customer)
    both = agent_talk + customer_talk
    words = words or {}
    return TalkMetrics(
        duration_s=duration_s,
        agent_talk_s=agent_talk,
        customer_talk_s=customer_talk,
        silence_s=max(0.0, duration_s - total(hold) - total([*agent, *customer])),
        overtalk_s=total(intersect(agent, customer)),
        hold_s=total(hold),
        agent_longest_monologue_s=longest_monologue(agent, customer),
        customer_longest_monologue_s=longest_monologue(customer, agent),
        agent_talk_ratio=agent_talk / both if both > 0 else None,
        agent_interruptions=interruptions(agent, customer),
        customer_interruptions=interruptions(customer, agent),
        agent_wpm=_wpm(words.get("agent"), agent_talk),
        customer_wpm=_wpm(words.get("customer"), customer_talk),
    )


def longest_monologue(own: Sequence[Interval], other: Sequence[Interval]) -> float:
    """The longest stretch of ``own`` talk that the other side does not break into.

    Pauses up to MONOLOGUE_GAP_S and the other side's short backchannels ("mm-hm") do not end it.
    """
    breaks = [(a, b) for a, b in other if b - a >= BACKCHANNEL_S]
    longest = 0.0
    current: Interval | None = None
    for start, end in own:
        broken = current is not None and any(current[0] < a <= start for a, _ in breaks)
        if current is None or start - current[1] > MONOLOGUE_GAP_S or broken:
            current = (start, end)
        else:
            current = (current[0], end)
        longest = max(longest, current[1] - current[0])
    return longest


def interruptions(own: Sequence[Interval], other: Sequence[Interval]) -> int:
    """How often ``own`` started talking while the other side was mid-speech and kept on."""
    count = 0
    for start, _ in own:
        for a, b in other:
            if a + INTERRUPT_OVERLAP_S <= start and start + INTERRUPT_OVERLAP_S <= b:
                count += 1
                break
    return count


def _wpm(words: int | None, talk_s: float) -> float | None:
    if words is None or talk_s < 1.0:
        return None
    return words / (talk_s / 60.0)
