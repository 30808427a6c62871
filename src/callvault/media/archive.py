"""The archive format: Ogg Opus, one independently coded channel per party.

A recording is stored at about 12 kbit/s per channel (VBR), keeping the
call's own sample rate (8 kHz narrowband, 16 kHz wideband), agent on the left
(channel 0) and customer on the right (channel 1).

Channels are never coupled: libopus' stereo mode mixes the two sides at low
bitrates (measured here: speech on the left, silence on the right came back
equally loud on both at 16 kbit/s), which would destroy the separation that
compliance review depends on. Channel-mapping family 255 codes every channel
as its own mono stream inside one Ogg Opus file.

The encoder is sans-IO and incremental: feed PCM while the call runs, take
the finished Ogg pages with :meth:`ArchiveEncoder.drain` to spool them, and
:meth:`ArchiveEncoder.finish` at hang-up.
"""

from __future__ import annotations

from typing import Final

import av
import numpy as np
import numpy.typing as npt

from callvault.media.decoding import DecodedAudio, decode_audio
from callvault.media.silence_gate import SilenceGate
from callvault.media.wav import to_wav

__all__ = [
    "ARCHIVE_RATES",
    "DEFAULT_BITRATE_PER_CHANNEL",
    "DEFAULT_COMPLEXITY",
    "DEFAULT_SILENCE_GATE_DBFS",
    "ArchiveEncoder",
    "DecodedAudio",
    "archive_rate_for",
    "decode_audio",
    "encode_archive",
    "to_wav",
]

ARCHIVE_RATES: Final = (8000, 16000, 24000, 48000)
DEFAULT_BITRATE_PER_CHANNEL: Final = 10000
DEFAULT_SILENCE_GATE_DBFS: Final = -50.0
# 10 kbit/s per channel at complexity 0 with the silence gate keeps a
# conversation under 100 KB per stereo minute at STOI >= 0.95 and encodes at
# ~500x real time (bench/storage.py: ~90 KB/min, STOI 0.96 on turn-taking
# speech). Complexity 5 buys ~0.3 PESQ for 2.5x the encoding CPU.
DEFAULT_COMPLEXITY: Final = 0
MAX_CHANNELS: Final = 2
_FRAME_MS: Final = 60
_LAYOUTS: Final = {1: "mono", 2: "stereo"}


def archive_rate_for(sample_rate: int) -> int:
    """The Opus rate a call at ``sample_rate`` is archived at (the nearest supported one)."""
    if sample_rate <= 0:
        raise ValueError(f"invalid sample rate {sample_rate}")
    # Ties go to the higher rate so no bandwidth is lost on the way.
    return min(ARCHIVE_RATES, key=lambda rate: (abs(rate - sample_rate), -rate))


class _Spool:
    """Write target for the muxer that hands out what was written so far."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


class ArchiveEncoder:
    """Incremental Ogg Opus encoder for ``(channels, n)`` int16 PCM.

    Writing in many small pieces produces byte for byte the file one large
    write would: libopus always sees whole 60 ms frames, buffered here.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        bitrate_per_channel: int = DEFAULT_BITRATE_PER_CHANNEL,
        complexity: int = DEFAULT_COMPLEXITY,
        silence_gate_dbfs: float | None = DEFAULT_SILENCE_GATE_DBFS,
    ) -> None:
        if channels not in _LAYOUTS:
            raise ValueError(f"archive supports 1 or 2 channels, got {channels}")
        if not 6000 <= bitrate_per_channel <= 256000:
            raise ValueError(f"bitrate per channel must be 6000..256000 bit/s, got {bitrate_per_channel}")
        if not 0 <= complexity <= 10:
            raise ValueError(f"Opus complexity must be 0..10, got {complexity}")
        self.input_rate = sample_rate
        self.sample_rate = archive_rate_for(sample_rate)
        self.channels = channels
        self.bitrate_per_channel = bitrate_per_channel
        self.samples_written = 0
        self._samples_encoded = 0
        self._gate = (
            SilenceGate(channels, sample_rate, silence_gate_dbfs) if silence_gate_dbfs is not None else None
        )
        self._layout = _LAYOUTS[channels]
        self._spool = _Spool()
        self._finished = False
        # Bit-exact muxing: fixed stream serial and vendor string, so the same
        # audio always gives the same bytes (tests, deduplication).
        self._container = av.open(self._spool, mode="w", format="ogg", options={"fflags": "+bitexact"})
        stream = self._container.add_stream("libopus", rate=self.sample_rate, layout=self._layout)
        # "audio", not "voip": voip mode adds a pitch-tracking high-pass that
        # shifts a low voice's fundamental, costing ~0.1 of waveform correlation
        # for no gain in size, speed or STOI (measured with bench/storage.py).
        options = {
            "application": "audio",
            "frame_duration": str(_FRAME_MS),
            "compression_level": str(complexity),
            "vbr": "on",
        }
        if channels > 1:
            options["mapping_family"] = "255"
        stream.codec_context.options = options
        stream.bit_rate = bitrate_per_channel * channels
        self._stream = stream
        self._resampler = (
            av.AudioResampler(format="s16", layout=self._layout, rate=self.sample_rate)
            if self.sample_rate != sample_rate
            else None
        )

    @property
    def duration(self) -> float:
        """Seconds of input audio written so far."""
        return self.samples_written / self.input_rate

    def write(self, pcm: npt.NDArray[np.int16]) -> None:
        """Encode more samples, shape ``(channels, n)`` (or ``(n,)`` for mono) at the input rate."""
        if self._finished:
            raise ValueError("archive encoder is already finished")
        samples = np.asarray(pcm)
        if samples.dtype != np.int16:
            raise ValueError(f"archive samples must be int16, got {samples.dtype}")
        if samples.ndim == 1 and self.channels == 1:
            samples = samples[np.newaxis, :]
        if samples.ndim != 2 or samples.shape[0] != self.channels:
            raise ValueError(f"archive samples must have shape ({self.channels}, n), got {samples.shape}")
        if samples.shape[1] == 0:
            return
        self.samples_written += samples.shape[1]
        self._encode_samples(self._gate.process(samples) if self._gate else samples)

    def _encode_samples(self, samples: npt.NDArray[np.int16]) -> None:
        if samples.shape[1] == 0:
            return
        interleaved = np.ascontiguousarray(samples.T).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=self._layout)
        frame.sample_rate = self.input_rate
        frame.pts = self._samples_encoded
        self._samples_encoded += samples.shape[1]
        if self._resampler is None:
            self._encode(frame)
        else:
            for converted in self._resampler.resample(frame):
                self._encode(converted)

    def drain(self) -> bytes:
        """The encoded bytes produced since the last drain (whole Ogg pages, possibly empty)."""
        return self._spool.take()

    def finish(self) -> bytes:
        """Flush the encoder and return every byte not yet taken by :meth:`drain`.

        Without earlier drains this is the complete Ogg Opus file.
        """
        if self._finished:
            raise ValueError("archive encoder is already finished")
        self._finished = True
        if self._gate is not None:
            self._encode_samples(self._gate.flush())
        if self._resampler is not None:
            for converted in self._resampler.resample(None):
                self._encode(converted)
        self._encode(None)
        self._container.close()
        return self._spool.take()

    def _encode(self, frame: av.AudioFrame | None) -> None:
        for packet in self._stream.encode(frame):
            self._container.mux(packet)


def encode_archive(
    pcm: npt.NDArray[np.int16],
    sample_rate: int,
    bitrate_per_channel: int = DEFAULT_BITRATE_PER_CHANNEL,
    complexity: int = DEFAULT_COMPLEXITY,
    silence_gate_dbfs: float | None = DEFAULT_SILENCE_GATE_DBFS,
) -> bytes:
    """Encode a whole recording, ``(channels, n)`` or mono ``(n,)`` int16, into the archive format."""
    samples = np.asarray(pcm)
    channels = 1 if samples.ndim == 1 else samples.shape[0]
    encoder = ArchiveEncoder(sample_rate, channels, bitrate_per_channel, complexity, silence_gate_dbfs)
    encoder.write(samples)
    return encoder.finish()
