"""Decode any audio file PyAV can read into int16 samples, refusing damage.

Accepts the archive format (Ogg Opus) and what users upload or import (WAV,
FLAC, MP3, Ogg Vorbis). Everything that is not clean audio becomes a
``ValueError`` with a precise message; that includes files whose decoded
length would exceed ``max_seconds``, so a tiny compressed file cannot expand
into gigabytes of samples.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Final

import av
import numpy as np
import numpy.typing as npt

from callvault.media.ogg import OpusHead, parse_opus_head, scan_pages

__all__ = ["DEFAULT_MAX_SECONDS", "DecodedAudio", "decode_audio"]

DEFAULT_MAX_SECONDS: Final = 4 * 3600.0
_OPUS_RATES: Final = (8000, 12000, 16000, 24000, 48000)
# Containers whose header states the exact length; FFmpeg decodes a cut-off
# file of these without complaint, so the length is compared afterwards.
# (FFmpeg's WAV demuxer shortens the stated length to the file size, so WAV is
# checked against its own header in _check_wav_length.)
_EXACT_LENGTH_FORMATS: Final = frozenset({"aiff", "flac", "caf"})


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """int16 samples, shape ``(channels, n)``, at ``sample_rate``."""

    pcm: npt.NDArray[np.int16]
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.pcm.shape[0])

    @property
    def samples(self) -> int:
        return int(self.pcm.shape[1])

    @property
    def duration(self) -> float:
        return int(self.pcm.shape[1]) / self.sample_rate


def decode_audio(
    data: bytes, max_seconds: float = DEFAULT_MAX_SECONDS, *, allow_truncated: bool = False
) -> DecodedAudio:
    """Decode ``data`` completely.

    Ogg Opus comes back at the rate recorded in its OpusHead (the rate the
    call was captured at), so samples line up with the source. With
    ``allow_truncated`` an Ogg file that lacks its end (a recorder that died
    mid-call) decodes up to the last complete page instead of failing.
    """
    if not data:
        raise ValueError("not an audio file: zero-length data")
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    opus_head: OpusHead | None = None
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        _check_wav_length(data)
    if data.startswith(b"OggS"):
        pages = scan_pages(data, allow_truncated=allow_truncated)
        opus_head = parse_opus_head(pages[0].body)
        data = data[: pages[-1].end]
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except av.error.FFmpegError as exc:
        raise ValueError(f"not an audio file: unrecognised format ({_reason(exc)})") from None
    with container:
        if not container.streams.audio:
            raise ValueError("not an audio file: no audio stream")
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        if channels < 1:
            raise ValueError("not an audio file: audio stream without channels")
        rate = _output_rate(stream.codec_context.sample_rate, opus_head)
        limit = int(max_seconds * rate)
        resampler = av.AudioResampler(format="s16p", rate=rate)
        blocks: list[npt.NDArray[np.int16]] = []
        decoded = 0
        try:
            for frame in container.decode(stream):
                for block in resampler.resample(frame):
                    decoded = _collect(blocks, block, decoded, limit, max_seconds)
            for block in resampler.resample(None):
                decoded = _collect(blocks, block, decoded, limit, max_seconds)
        except av.error.FFmpegError as exc:
            raise ValueError(
                f"truncated or corrupt audio at {decoded / rate:.2f} s ({_reason(exc)})"
            ) from None
        declared = _declared_seconds(container, stream)
    if decoded == 0:
        raise ValueError("not an audio file: no audio samples")
    if declared is not None and decoded / rate < declared - max(0.02, declared * 0.001):
        raise ValueError(f"truncated audio at {decoded / rate:.2f} s: the header declares {declared:.2f} s")
    pcm = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
    if pcm.shape[0] != channels:
        raise ValueError(f"corrupt audio: stream declares {channels} channels, decoded {pcm.shape[0]}")
    return DecodedAudio(pcm=np.ascontiguousarray(pcm), sample_rate=rate)


def _output_rate(stream_rate: int, opus_head: OpusHead | None) -> int:
    if opus_head is not None and opus_head.input_sample_rate in _OPUS_RATES:
        return opus_head.input_sample_rate
    if opus_head is not None:
        # The OpusHead rate is informational and may be any value (44.1 kHz
        # sources); Opus itself never codes more than 48 kHz.
        return 48000
    if stream_rate <= 0:
        raise ValueError("not an audio file: audio stream without a sample rate")
    return stream_rate


def _check_wav_length(data: bytes) -> None:
    """Refuse a WAV file whose data chunk is shorter than its header says."""
    offset = 12
    byte_rate = 0
    while offset + 8 <= len(data):
        chunk, size = struct.unpack_from("<4sI", data, offset)
        if chunk == b"fmt " and size >= 16 and offset + 24 <= len(data):
            byte_rate = struct.unpack_from("<I", data, offset + 16)[0]
        if chunk == b"data":
            available = len(data) - offset - 8
            # 0 and 0xFFFFFFFF mark a WAV written as a stream, length unknown.
            if size not in (0, 0xFFFFFFFF) and available < size:
                at = f" at {available / byte_rate:.2f} s" if byte_rate else ""
                raise ValueError(f"truncated audio{at}: WAV data chunk holds {available} of {size} bytes")
            return
        offset += 8 + size + (size & 1)


def _declared_seconds(
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream
) -> float | None:
    if not set(container.format.name.split(",")) & _EXACT_LENGTH_FORMATS:
        return None
    if stream.duration is None or stream.time_base is None or stream.duration <= 0:
        return None
    return float(stream.duration * stream.time_base)


def _collect(
    blocks: list[npt.NDArray[np.int16]], frame: av.AudioFrame, decoded: int, limit: int, max_seconds: float
) -> int:
    decoded += frame.samples
    if decoded > limit:
        raise ValueError(f"audio longer than the limit of {max_seconds:g} s")
    blocks.append(frame.to_ndarray().astype(np.int16, copy=False))
    return decoded


def _reason(exc: av.error.FFmpegError) -> str:
    return str(getattr(exc, "strerror", None) or exc)
