"""What a speech recognition engine offers, and how its configuration is described.

An engine hears one channel at a time (agent and customer are on separate
channels of the archive, so who spoke is never guessed): 16 kHz mono float32
samples in, timed words out. It skips silence itself (voice activity
detection before the recogniser), so its cost follows speech, not call length,
and reports how many seconds of speech it actually decoded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

from callvault.errors import CallvaultError
from callvault.speech.transcript import ChannelTranscript, Speaker

SAMPLE_RATE = 16000  # what every engine is fed
Device = Literal["cpu", "cuda"]
Audio = npt.NDArray[np.float32]


class ModelUnavailable(CallvaultError):
    """The recogniser's model is missing, unreadable or not a model: no retry can fix it."""

    status_code = 503
    code = "model_unavailable"


@dataclass(frozen=True)
class TranscriberConfig:
    engine: str  # "faster-whisper"
    model_path: Path
    device: Device
    threads: int  # CPU threads per recogniser (0: the engine's default)
    language: str | None  # None: detect per channel (multilingual models only)


@dataclass(frozen=True)
class ChannelResult:
    channel: ChannelTranscript
    speech_seconds: float  # audio left after voice activity detection: what was decoded
    audio_seconds: float


class Transcriber(Protocol):
    """A loaded speech recogniser; one per worker process (loading takes seconds)."""

    @property
    def engine(self) -> str: ...

    @property
    def model(self) -> str: ...

    def transcribe(self, audio: Audio, speaker: Speaker) -> ChannelResult:
        """Words of one channel; ``audio`` is 16 kHz mono float32 in -1..1."""
        ...
