"""Calls with known words on each side, for transcription tests and benchmarks.

Speech is espeak-ng (:mod:`tests.support.phone_line`), 16 kHz; the agent speaks
first on the left channel, the customer answers on the right, turn by turn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tests.support.audio import stereo_wav
from tests.support.phone_line import RATE, place, speak

Pcm = npt.NDArray[np.int16]

AGENT_LINES = (
    "Hello, thank you for calling, how can I help you today?",
    "I can arrange a refund for that order right away.",
)
CUSTOMER_LINES = (
    "I would like a refund for my broken kettle please.",
    "Thank you very much, that is all I needed.",
)


@dataclass(frozen=True)
class SpokenCall:
    left: Pcm  # agent, 16 kHz
    right: Pcm  # customer, 16 kHz
    agent_text: str
    customer_text: str
    # (start, end) seconds of each line per side, in the order spoken.
    agent_spans: tuple[tuple[float, float], ...]
    customer_spans: tuple[tuple[float, float], ...]

    def wav(self) -> bytes:
        return stereo_wav(self.left, self.right, RATE)


def spoken_call(
    agent_lines: tuple[str, ...] = AGENT_LINES,
    customer_lines: tuple[str, ...] = CUSTOMER_LINES,
    *,
    agent_voice: str = "en-us",
    customer_voice: str = "en-gb",
    gap: float = 0.6,
    lead: float = 0.5,
    tail: float = 0.5,
) -> SpokenCall:
    """Agent and customer lines alternating (agent first), ``gap`` seconds between turns."""
    at = lead
    left_parts: list[tuple[float, Pcm]] = []
    right_parts: list[tuple[float, Pcm]] = []
    for index in range(max(len(agent_lines), len(customer_lines))):
        for lines, voice, parts in (
            (agent_lines, agent_voice, left_parts),
            (customer_lines, customer_voice, right_parts),
        ):
            if index < len(lines):
                pcm = speak(lines[index], voice)
                parts.append((at, pcm))
                at += pcm.size / RATE + gap
    length = at + tail
    return SpokenCall(
        left=place(length, left_parts),
        right=place(length, right_parts),
        agent_text=" ".join(agent_lines),
        customer_text=" ".join(customer_lines),
        agent_spans=tuple((start, start + pcm.size / RATE) for start, pcm in left_parts),
        customer_spans=tuple((start, start + pcm.size / RATE) for start, pcm in right_parts),
    )
