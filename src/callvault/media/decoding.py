"""Decode any audio file PyAV can read into int16 samples, refusing damage.

Accepts the archive format (Ogg Opus) and what users upload or import (WAV,
FLAC, MP3, Ogg Vorbis). Everything that is not clean audio becomes a
``ValueError`` with a precise message; that includes files whose decoded
length would exceed ``max_seconds``, so a tiny compressed file cannot expand
into gigabytes of samples.

With ``salvage`` (imports of recordings made elsewhere) damage short of "no
audio at all" is kept instead of refused: packets the decoder rejects are
counted and skipped, a file shorter than its header says is decoded up to
the cut, and each problem is named in :attr:`DecodedAudio.damage`, so the
caller can keep the evidence and flag it as incomplete.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

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
# An MP3 states its length only in a Xing/Info/VBRI tag in its first frame;
# without one FFmpeg estimates the length from the file size, which a cut
# file shortens too, so only tagged MP3 files are checked.
_MP3_LENGTH_TAGS: Final = (b"Xing", b"Info", b"VBRI")


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """int16 samples, shape ``(channels, n)``, at ``sample_rate``."""

    pcm: npt.NDArray[np.int16]
    sample_rate: int
    damage: tuple[str, ...] = ()
    decode_errors: int = 0

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
    data: bytes,
    max_seconds: float = DEFAULT_MAX_SECONDS,
    *,
    allow_truncated: bool = False,
    salvage: bool = False,
    max_channels: int | None = None,
) -> DecodedAudio:
    """Decode ``data`` completely.

    Ogg Opus comes back at the rate recorded in its OpusHead (the rate the
    call was captured at), so samples line up with the source. With
    ``allow_truncated`` an Ogg file that lacks its end (a recorder that died
    mid-call) decodes up to the last complete page instead of failing.
    ``max_channels`` keeps only the first channels of each decoded block, so
    a many-channel file costs no more memory than the channels kept.
    """
    if not data:
        raise ValueError("not an audio file: zero-length data")
    if max_seconds <= 0:
        raise ValueError(f"max_seconds must be positive, got {max_seconds}")
    damage: list[str] = []
    opus_head: OpusHead | None = None
    if data.startswith(b"RIFF") and data[8:12] == b"WAVE":
        _keep_or_raise(damage, salvage, _check_wav_length, data)
    if data.startswith(b"OggS"):
        pages = scan_pages(data, allow_truncated=allow_truncated or salvage)
        if salvage and (pages[-1].end < len(data) or not pages[-1].end_of_stream):
            damage.append(
                f"truncated Ogg stream: {len(data) - pages[-1].end} bytes after the last whole page"
            )
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
        decoder = _Decoder(rate, max_seconds, max_channels or channels, salvage)
        decoder.run(container, stream)
        damage += decoder.damage
        declared = _declared_seconds(container, stream, data)
    if decoder.decoded == 0:
        raise ValueError("not an audio file: no audio samples")
    if declared is not None and decoder.decoded / rate < declared - max(0.02, declared * 0.001):
        problem = f"truncated audio at {decoder.decoded / rate:.2f} s: the header declares {declared:.2f} s"
        _keep_or_raise(damage, salvage, _raise, problem)
    blocks = decoder.blocks
    pcm = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
    del blocks, decoder.blocks
    if pcm.shape[0] != min(channels, max_channels or channels):
        raise ValueError(f"corrupt audio: stream declares {channels} channels, decoded {pcm.shape[0]}")
    return DecodedAudio(
        pcm=np.ascontiguousarray(pcm),
        sample_rate=rate,
        damage=tuple(damage),
        decode_errors=decoder.errors,
    )


class _Decoder:
    """Decode packet by packet: in salvage mode a packet the codec rejects is counted and skipped."""

    def __init__(self, rate: int, max_seconds: float, keep_channels: int, salvage: bool) -> None:
        self.rate = rate
        self.max_seconds = max_seconds
        self.limit = int(max_seconds * rate)
        self.keep = keep_channels
        self.salvage = salvage
        self.blocks: list[npt.NDArray[np.int16]] = []
        self.decoded = 0
        self.errors = 0
        self.damage: list[str] = []

    def run(self, container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> None:
        resampler = av.AudioResampler(format="s16p", rate=self.rate)
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as exc:
                # The container itself is damaged: nothing after this point can be read.
                self._fail(f"truncated or corrupt audio at {self.seconds:.2f} s ({_reason(exc)})")
                break
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                if isinstance(exc, MemoryError):
                    raise  # out of memory is no damage of the file: never counted and skipped
                self.errors += 1
                if not self.salvage:
                    raise ValueError(
                        f"truncated or corrupt audio at {self.seconds:.2f} s ({_reason(exc)})"
                    ) from None
                continue
            for frame in frames:
                for block in resampler.resample(frame):
                    self._collect(block)
        for block in resampler.resample(None):
            self._collect(block)
        if self.errors:
            self.damage.append(f"{self.errors} undecodable audio packets skipped")

    @property
    def seconds(self) -> float:
        return self.decoded / self.rate

    def _fail(self, problem: str) -> None:
        if not self.salvage:
            raise ValueError(problem)
        self.damage.append(problem)

    def _collect(self, frame: av.AudioFrame) -> None:
        self.decoded += frame.samples
        if self.decoded > self.limit:
            raise ValueError(f"audio longer than the limit of {self.max_seconds:g} s")
        samples = frame.to_ndarray()[: self.keep]
        self.blocks.append(samples.astype(np.int16, copy=False))


def _keep_or_raise(damage: list[str], salvage: bool, check: Callable[[Any], None], arg: Any) -> None:
    try:
        check(arg)
    except ValueError as exc:
        if not salvage:
            raise
        damage.append(str(exc))


def _raise(problem: str) -> None:
    raise ValueError(problem)


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
    container: av.container.InputContainer, stream: av.audio.stream.AudioStream, data: bytes
) -> float | None:
    formats = set(container.format.name.split(","))
    exact = bool(formats & _EXACT_LENGTH_FORMATS) or ("mp3" in formats and _has_mp3_length_tag(data))
    if not exact:
        return None
    if stream.duration is None or stream.time_base is None or stream.duration <= 0:
        return None
    return float(stream.duration * stream.time_base)


def _has_mp3_length_tag(data: bytes) -> bool:
    start = 0
    if data.startswith(b"ID3") and len(data) >= 10:
        # ID3v2 size: four 7-bit bytes (synchsafe), after a 10-byte header.
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        start = 10 + size
    first_frame = data[start : start + 200]
    return any(tag in first_frame for tag in _MP3_LENGTH_TAGS)


def _reason(exc: av.error.FFmpegError) -> str:
    return str(getattr(exc, "strerror", None) or exc)
