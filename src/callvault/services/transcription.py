"""Transcribing a sealed recording: decode the archive, hear each channel alone, store once.

Agent (left, channel 0) and customer (right, channel 1) are transcribed
separately, so who said what is exact. The archive is our own output, decoded
in-process as playback and waveforms do (untrusted uploads were decoded in the
sandbox before they became archives). A mixed (mono) recording has one
channel, transcribed as channel 0 ("agent"): its speakers cannot be told apart.

The recogniser is loaded once per process and configuration, on the first job
(seconds), and kept. Outcomes the job layer acts on:

- already transcribed: nothing is done (a retried job writes once);
- the recording is gone, deleted or its audio destroyed, before or while it is
  transcribed: :class:`RecordingGone`, nothing written;
- the model is missing or corrupt: :class:`~callvault.asr.port.ModelUnavailable`;
- the archive cannot be decoded: :class:`Untranscribable`;
- silence or music only: an empty transcript is stored, not an error.

The archive is decoded and heard in windows of a few minutes
(:func:`~callvault.media.speech_audio.archive_windows`), so a worker's memory
does not grow with the length of the call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from callvault.asr.factory import open_transcriber, packaged_model_path
from callvault.asr.port import Audio, Device, Transcriber, TranscriberConfig
from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.errors import CallvaultError, IntegrityError, NotFound
from callvault.media.speech_audio import SPEECH_RATE, WINDOW_S, archive_windows
from callvault.services.playback import ArchiveFile, PlaybackService
from callvault.services.transcripts import TranscriptStore
from callvault.settings import Settings
from callvault.speech.transcript import SPEAKERS, ChannelTranscript, Transcript, joined

log = logging.getLogger(__name__)


class RecordingGone(CallvaultError):
    """The recording was deleted, or its audio destroyed, before its transcript was stored."""

    status_code = 410
    code = "recording_gone"


class Untranscribable(CallvaultError):
    """The archive cannot be decoded (damaged or not audio): retrying cannot fix it."""

    status_code = 422
    code = "untranscribable"


@dataclass(frozen=True)
class TranscriptionOutcome:
    recording_id: str
    stored: bool  # False: a transcript was already there
    audio_seconds: float = 0.0  # per channel
    speech_seconds: float = 0.0  # decoded after voice activity detection, all channels
    words: int = 0
    elapsed_seconds: float = 0.0


def transcriber_config(settings: Settings) -> TranscriberConfig:
    path = settings.transcription_model_path
    language = settings.transcription_language
    return TranscriberConfig(
        engine=settings.transcription_engine,
        model_path=Path(path) if path else packaged_model_path(),
        device=cast(Device, settings.transcription_device),
        threads=settings.transcription_threads,
        language=None if language == "auto" else language,
    )


_LOADED: dict[TranscriberConfig, Transcriber] = {}
_LOADING = threading.Lock()


def shared_transcriber(config: TranscriberConfig) -> Transcriber:
    """One loaded recogniser per configuration per process (a model takes seconds and
    hundreds of MB to load); a failed load is not remembered, so a fixed model is picked up."""
    with _LOADING:
        if config not in _LOADED:
            _LOADED[config] = open_transcriber(config)
        return _LOADED[config]


class TranscriptionService:
    def __init__(
        self,
        catalog: Catalog,
        playback: PlaybackService,
        transcripts: TranscriptStore,
        config: Callable[[], TranscriberConfig],
        loader: Callable[[TranscriberConfig], Transcriber] = shared_transcriber,
        window_s: float = WINDOW_S,
    ) -> None:
        self._window_s = window_s
        self._catalog = catalog
        self._playback = playback
        self._transcripts = transcripts
        self._config = config
        self._loader = loader

    def transcriber(self) -> Transcriber:
        """The loaded recogniser (loaded now if this process has none yet)."""
        return self._loader(self._config())

    def transcribe(
        self, recording_id: str, progress: Callable[[float], None] = lambda fraction: None
    ) -> TranscriptionOutcome:
        if self._transcripts.exists(recording_id):
            return TranscriptionOutcome(recording_id, stored=False)
        transcriber = self.transcriber()  # a broken model fails before any decoding
        began = time.monotonic()
        with self._catalog.read() as session:
            recording = _transcribable(session.get(Recording, recording_id), recording_id)
            reader = self._playback.open_reader(recording)
            duration = recording.duration_seconds or 0.0
        heard: list[list[tuple[float, float, ChannelTranscript]]] = [[] for _ in SPEAKERS]
        speech, length = 0.0, 0.0
        # Window by window (a few minutes each), so memory stays bounded however long the call.
        for start, audio in self._windows(recording_id, reader):
            length = start + audio.shape[1] / SPEECH_RATE
            sides = audio[: len(SPEAKERS)]
            progress(_done(start, duration))  # decoded: from 0.1 on, the recogniser is at work
            for index, samples in enumerate(sides):
                result = transcriber.transcribe(samples, SPEAKERS[index])
                heard[index].append((start, length, result.channel))
                speech += result.speech_seconds
                progress(_done(start + (length - start) * (index + 1) / len(sides), duration))
        channels = [joined(SPEAKERS[index], windows) for index, windows in enumerate(heard) if windows]
        transcript = Transcript(tuple(channels), transcriber.engine, transcriber.model)
        try:
            stored = self._transcripts.store(recording_id, transcript, speech)
        except NotFound:
            raise RecordingGone(f"recording {recording_id} was deleted while it was transcribed") from None
        words = sum(len(channel.words) for channel in channels)
        elapsed = time.monotonic() - began
        log.info(
            "recording %s transcribed: %d words, %.1f s of speech in %.1f s of audio, %.1f s",
            recording_id,
            words,
            speech,
            length,
            elapsed,
        )
        return TranscriptionOutcome(recording_id, stored, length, speech, words, elapsed)

    def _windows(self, recording_id: str, reader: Any) -> Iterator[tuple[float, Audio]]:
        """The archive's windows; a decoding failure named (or RecordingGone if it went meanwhile)."""
        try:
            yield from archive_windows(ArchiveFile(reader), self._window_s)
        except (ValueError, IntegrityError) as exc:
            self._raise_if_gone(recording_id)
            raise Untranscribable(f"recording {recording_id}: archive cannot be decoded: {exc}") from None
        except CallvaultError:
            self._raise_if_gone(recording_id)
            raise  # the vault or catalog briefly away: the job is retried

    def _raise_if_gone(self, recording_id: str) -> None:
        with self._catalog.read() as session:
            _transcribable(session.get(Recording, recording_id), recording_id)


def _done(heard_s: float, duration_s: float) -> float:
    """Progress: 0.1 once the first window is decoded, 0.95 when every channel is heard."""
    return 0.1 + 0.85 * min(1.0, heard_s / duration_s) if duration_s > 0 else 0.1


def _transcribable(recording: Recording | None, recording_id: str) -> Recording:
    if recording is None or recording.deleted_at is not None or recording.status == "deleted":
        raise RecordingGone(f"recording {recording_id} does not exist or was deleted")
    if recording.key_destroyed_at is not None or recording.wrapped_key is None or not recording.kek_id:
        raise RecordingGone(f"recording {recording_id}: its audio was destroyed")
    if not recording.object_key:
        raise RecordingGone(f"recording {recording_id} has no audio")
    if recording.status == "recording":
        raise CallvaultError(f"recording {recording_id} is still in progress")
    return recording
