"""RTP payload decoders and encoders for the recorder (RFC 3551, RFC 7587).

A decoder turns one RTP payload into int16 mono PCM at :attr:`sample_rate`.
G.711 and L16 are numpy table lookups and convert a whole batch of payloads in
one call; G.722, G.729 and Opus go through FFmpeg via PyAV.

Recording must survive bad packets: G.711 has no invalid byte values, and the
FFmpeg-backed decoders answer a payload they cannot decode with silence of
the payload's nominal length, counted in :attr:`PayloadDecoder.decode_errors`,
so one broken packet never shifts the rest of the call in time.

Notes on clocks: G.722 ticks its RTP clock at 8000 Hz although it samples at
16 kHz (RFC 3551 section 4.5.2), so ``samples_for`` doubles. Opus always uses
a 48 kHz RTP clock and FFmpeg's Opus decoders always output 48 kHz, so Opus
is decoded at 48 kHz (no resampler state, exact lengths per packet).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, Protocol, cast

import av
import numpy as np
import numpy.typing as npt

from callvault.media.g711 import ALAW_DECODE, ULAW_DECODE, alaw_encode, ulaw_encode

__all__ = [
    "PayloadDecoder",
    "PayloadEncoder",
    "create_decoder",
    "create_encoder",
    "opus_packet_samples",
]

Pcm = npt.NDArray[np.int16]
_EMPTY: Final = np.zeros(0, dtype=np.int16)


class PayloadDecoder(Protocol):
    encoding: str
    clock_rate: int
    sample_rate: int
    decode_errors: int

    def decode(self, payload: bytes) -> Pcm: ...

    def decode_batch(self, payloads: Sequence[bytes]) -> Pcm: ...

    def samples_for(self, rtp_timestamp_delta: int) -> int: ...


class PayloadEncoder(Protocol):
    encoding: str
    clock_rate: int
    sample_rate: int

    def encode(self, pcm: Pcm) -> bytes: ...


class _Base:
    def __init__(self, encoding: str, clock_rate: int, sample_rate: int) -> None:
        self.encoding = encoding
        self.clock_rate = clock_rate
        self.sample_rate = sample_rate
        self.decode_errors = 0

    def samples_for(self, rtp_timestamp_delta: int) -> int:
        """Output samples covered by ``rtp_timestamp_delta`` ticks of the RTP clock."""
        return rtp_timestamp_delta * self.sample_rate // self.clock_rate


class G711Decoder(_Base):
    def __init__(self, encoding: str, table: Pcm) -> None:
        super().__init__(encoding, 8000, 8000)
        self._table = table

    def decode(self, payload: bytes) -> Pcm:
        return self._table.take(np.frombuffer(payload, dtype=np.uint8))

    def decode_batch(self, payloads: Sequence[bytes]) -> Pcm:
        return self._table.take(np.frombuffer(b"".join(payloads), dtype=np.uint8))


class L16Decoder(_Base):
    """Network-order 16-bit linear PCM; several channels are mixed to mono."""

    def __init__(self, clock_rate: int, channels: int) -> None:
        super().__init__("L16", clock_rate, clock_rate)
        self._channels = channels

    def decode(self, payload: bytes) -> Pcm:
        usable = len(payload) - len(payload) % (2 * self._channels)
        if usable != len(payload):
            self.decode_errors += 1
        samples = np.frombuffer(payload[:usable], dtype=">i2").astype(np.int16)
        if self._channels == 1:
            return samples
        frames = samples.reshape(-1, self._channels).astype(np.int32)
        mixed: Pcm = np.clip(frames.sum(axis=1), -32768, 32767).astype(np.int16)
        return mixed

    def decode_batch(self, payloads: Sequence[bytes]) -> Pcm:
        if all(len(p) % (2 * self._channels) == 0 for p in payloads):
            return self.decode(b"".join(payloads))
        return _concat([self.decode(p) for p in payloads])


class AvDecoder(_Base):
    """A payload codec decoded by FFmpeg, one packet at a time."""

    def __init__(self, encoding: str, codec: str, clock_rate: int, sample_rate: int) -> None:
        super().__init__(encoding, clock_rate, sample_rate)
        self._context = cast(av.AudioCodecContext, av.CodecContext.create(codec, "r"))
        self._context.sample_rate = sample_rate
        self._context.layout = "mono"
        self._context.open()

    def decode(self, payload: bytes) -> Pcm:
        if not payload:
            return _EMPTY
        try:
            frames = self._context.decode(av.Packet(payload))
        except av.error.FFmpegError:
            frames = []
        if not frames:
            self.decode_errors += 1
            return np.zeros(self.nominal_samples(payload), dtype=np.int16)
        return _concat([_mono_int16(frame) for frame in frames])

    def decode_batch(self, payloads: Sequence[bytes]) -> Pcm:
        return _concat([self.decode(p) for p in payloads])

    def nominal_samples(self, payload: bytes) -> int:
        """Samples a payload of this length stands for, used to fill in for damaged ones."""
        match self.encoding:
            case "G722":
                return 2 * len(payload)  # 64 kbit/s mode: one byte per two 16 kHz samples
            case "G729":
                # 10-byte speech frames and 2-byte Annex B comfort-noise frames, 10 ms each
                return 80 * (len(payload) // 10 + (1 if len(payload) % 10 else 0))
            case _:
                return opus_packet_samples(payload) or self.sample_rate // 50


def opus_packet_samples(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples from its TOC byte (RFC 6716 3.1); 0 if malformed."""
    if not packet:
        return 0
    toc = packet[0]
    config = toc >> 3
    if config < 12:  # SILK: 10, 20, 40, 60 ms
        frame = (480, 960, 1920, 2880)[config & 3]
    elif config < 16:  # hybrid: 10, 20 ms
        frame = (480, 960)[config & 1]
    else:  # CELT: 2.5, 5, 10, 20 ms
        frame = (120, 240, 480, 960)[config & 3]
    code = toc & 3
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    elif len(packet) < 2:
        return 0
    else:
        count = packet[1] & 0x3F
    total = frame * count
    return total if 0 < total <= 5760 else 0


class G711Encoder:
    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self.clock_rate = 8000
        self.sample_rate = 8000
        self._encode = ulaw_encode if encoding == "PCMU" else alaw_encode

    def encode(self, pcm: Pcm) -> bytes:
        return self._encode(_mono_input(pcm))


class L16Encoder:
    def __init__(self, clock_rate: int) -> None:
        self.encoding = "L16"
        self.clock_rate = clock_rate
        self.sample_rate = clock_rate

    def encode(self, pcm: Pcm) -> bytes:
        return _mono_input(pcm).astype(">i2").tobytes()


class G722Encoder:
    """G.722 at 64 kbit/s from 16 kHz mono; input short of a 20 ms frame waits for the next call."""

    def __init__(self) -> None:
        self.encoding = "G722"
        self.clock_rate = 8000
        self.sample_rate = 16000
        self._context = av.CodecContext.create("g722", "w")
        self._context.sample_rate = 16000
        self._context.layout = "mono"
        self._context.format = "s16"
        self._context.open()

    def encode(self, pcm: Pcm) -> bytes:
        samples = _mono_input(pcm)
        if samples.size == 0:
            return b""
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        return b"".join(bytes(packet) for packet in self._context.encode(frame))


def _normalise(encoding: str) -> str:
    name = encoding.strip().upper()
    return "OPUS" if name == "OPUS" else name


def create_decoder(encoding: str, clock_rate: int, channels: int = 1) -> PayloadDecoder:
    """A decoder for the SDP ``rtpmap`` ``encoding/clock_rate[/channels]`` (names case-insensitive)."""
    name = _normalise(encoding)
    _check_clock(name, clock_rate, channels)
    match name:
        case "PCMU":
            return G711Decoder("PCMU", ULAW_DECODE)
        case "PCMA":
            return G711Decoder("PCMA", ALAW_DECODE)
        case "L16":
            return L16Decoder(clock_rate, channels)
        case "G722":
            return AvDecoder("G722", "g722", clock_rate, 16000)
        case "G729":
            return AvDecoder("G729", "g729", clock_rate, 8000)
        case "OPUS":
            # Opus SDP always says /2; the decoder folds stereo packets to mono.
            return AvDecoder("opus", "libopus", clock_rate, 48000)
    raise ValueError(f"unsupported RTP payload encoding {encoding!r}")


def create_encoder(encoding: str, clock_rate: int = 8000, channels: int = 1) -> PayloadEncoder:
    """An encoder for PCMU, PCMA, G722 or L16 (test peers and the demo recording client)."""
    name = _normalise(encoding)
    _check_clock(name, clock_rate, channels)
    if channels != 1:
        raise ValueError(f"payload encoders are mono only, got {channels} channels")
    match name:
        case "PCMU" | "PCMA":
            return G711Encoder(name)
        case "G722":
            return G722Encoder()
        case "L16":
            return L16Encoder(clock_rate)
    raise ValueError(f"no RTP payload encoder for {encoding!r}")


_FIXED_CLOCKS: Final = {"PCMU": 8000, "PCMA": 8000, "G722": 8000, "G729": 8000, "OPUS": 48000}


def _check_clock(name: str, clock_rate: int, channels: int) -> None:
    if channels < 1 or channels > 8:
        raise ValueError(f"invalid channel count {channels} for {name}")
    expected = _FIXED_CLOCKS.get(name)
    if expected is not None and clock_rate != expected:
        raise ValueError(f"{name} uses an RTP clock of {expected} Hz, got {clock_rate}")
    if name == "L16" and not 1000 <= clock_rate <= 192000:
        raise ValueError(f"invalid L16 clock rate {clock_rate}")


def _mono_int16(frame: av.AudioFrame) -> Pcm:
    array = frame.to_ndarray()
    if array.dtype != np.int16:
        array = np.clip(np.round(array * 32767.0), -32768, 32767).astype(np.int16)
    # Packed formats come back as (1, n * channels); planar ones as (channels, n).
    return np.ascontiguousarray(array[0] if array.shape[0] == 1 else array.mean(axis=0).astype(np.int16))


def _mono_input(pcm: Pcm) -> Pcm:
    samples = np.asarray(pcm)
    if samples.dtype != np.int16:
        raise ValueError(f"samples must be int16, got {samples.dtype}")
    if samples.ndim == 2 and samples.shape[0] == 1:
        samples = samples[0]
    if samples.ndim != 1:
        raise ValueError(f"payload encoders take mono samples, got shape {samples.shape}")
    return np.ascontiguousarray(samples)


def _concat(parts: list[Pcm]) -> Pcm:
    if not parts:
        return _EMPTY
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
