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
:meth:`ArchiveEncoder.finish` at hang-up. Each channel has its own libopus
encoder (:mod:`.opus_frames`) and this module writes the Ogg pages itself
(RFC 7845: OpusHead, OpusTags, a page every 16 packets, the last page's
granule position trimming the padding). Every frame is encoded, silent ones
too (why: :mod:`.opus_frames`). FFmpeg only resamples input at rates Opus does
not code.
"""

from __future__ import annotations

import struct
from typing import Final

import av
import numpy as np
import numpy.typing as npt

from callvault.media.decoding import DecodedAudio, decode_audio
from callvault.media.ogg import ogg_crc
from callvault.media.opus_frames import ChannelEncoder, multistream_packet, opus_version
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
# conversation under 100 KB per stereo minute at STOI >= 0.95 (bench/storage.py:
# ~90 KB/min, STOI 0.96 on turn-taking speech); a 20 s turn-taking stereo call
# costs ~42 ms CPU to encode (~24 ms when silent frames skipped the encoder, which
# spoiled the onsets after pauses: see opus_frames).
# Complexity 5 buys ~0.3 PESQ for 2.5x the encoding CPU.
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


_SERIAL: Final = 0x4356_4C54  # fixed, so the same audio always gives the same bytes
_PACKETS_PER_PAGE: Final = 16  # ~1 s of 60 ms packets a page, whatever the drains
_GRANULE_RATE: Final = 48000


class ArchiveEncoder:
    """Incremental Ogg Opus encoder for ``(channels, n)`` int16 PCM.

    Writing in many small pieces produces byte for byte the file one large
    write would: libopus always sees whole 60 ms frames, buffered here, and
    pages are cut every 16 packets, not at drains. Each channel is its own
    mono libopus encoder (:mod:`.opus_frames`).
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
        self._gate = (
            SilenceGate(channels, sample_rate, silence_gate_dbfs) if silence_gate_dbfs is not None else None
        )
        self._layout = _LAYOUTS[channels]
        self._finished = False
        self._frame = self.sample_rate * _FRAME_MS // 1000
        self._encoders = [
            ChannelEncoder(self.sample_rate, self._frame, bitrate_per_channel, complexity)
            for _ in range(channels)
        ]
        self._lookahead = self._encoders[0].lookahead
        self._scale = _GRANULE_RATE // self.sample_rate
        self._pre_skip = self._lookahead * self._scale
        self._pending = np.zeros((channels, 0), dtype=np.int16)  # less than one frame
        self._samples_in = 0  # at the archive rate, into the frame buffer
        self._packets: list[bytes] = []  # of the page being filled
        self._packets_done = 0
        self._pages = bytearray()
        self._sequence = 0
        self._pages += self._page([self._head()], 0, bos=True)
        self._pages += self._page([_tags()], 0)
        # FFmpeg's resampler for input at a rate Opus does not code (uploads, imports).
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
        if self._resampler is None:
            self._frames(samples)
            return
        interleaved = np.ascontiguousarray(samples.T).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout=self._layout)
        frame.sample_rate = self.input_rate
        for converted in self._resampler.resample(frame):
            self._frames(_planar(converted, self.channels))

    def _frames(self, samples: npt.NDArray[np.int16]) -> None:
        """Whole frames to packets; the rest waits for more."""
        self._samples_in += samples.shape[1]
        if self._pending.shape[1]:
            samples = np.concatenate((self._pending, samples), axis=1)
        whole = samples.shape[1] // self._frame
        for index in range(whole):
            block = samples[:, index * self._frame : (index + 1) * self._frame]
            self._packet([np.ascontiguousarray(block[c]) for c in range(self.channels)])
        self._pending = samples[:, whole * self._frame :].copy()

    def _packet(self, frames: list[npt.NDArray[np.int16]]) -> None:
        packets = [encoder.encode(frame) for encoder, frame in zip(self._encoders, frames, strict=True)]
        self._packets.append(multistream_packet(packets))
        if len(self._packets) == _PACKETS_PER_PAGE:
            self._flush_page(None)

    def _flush_page(self, granule: int | None, eos: bool = False) -> None:
        self._packets_done += len(self._packets)
        natural = self._packets_done * self._frame * self._scale
        self._pages += self._page(self._packets, natural if granule is None else granule, eos=eos)
        self._packets = []

    def drain(self) -> bytes:
        """The encoded bytes produced since the last drain (whole Ogg pages, possibly empty)."""
        data = bytes(self._pages)
        self._pages.clear()
        return data

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
                self._frames(_planar(converted, self.channels))
        total = self._samples_in
        # Enough frames that the decoder, lagging by the look-ahead, reaches the last
        # sample, and the partial last frame completed with zeros.
        needed = -(-(total + self._lookahead) // self._frame) * self._frame
        queued = (self._packets_done + len(self._packets)) * self._frame + self._pending.shape[1]
        padding = max(needed - queued, -self._pending.shape[1] % self._frame)
        if padding:
            self._frames(np.zeros((self.channels, padding), dtype=np.int16))
        # The last page's granule position ends the stream at the last input sample.
        self._flush_page(self._pre_skip + total * self._scale, eos=True)
        for encoder in self._encoders:
            encoder.close()
        return self.drain()

    def _head(self) -> bytes:
        head = b"OpusHead" + struct.pack(
            "<BBHIhB", 1, self.channels, self._pre_skip, self.input_rate, 0, 0 if self.channels == 1 else 255
        )
        if self.channels > 1:
            # Family 255: one uncoupled mono stream per channel, channel i from stream i.
            head += bytes((self.channels, 0)) + bytes(range(self.channels))
        return head

    def _page(self, packets: list[bytes], granule: int, *, bos: bool = False, eos: bool = False) -> bytes:
        lacing = bytearray()
        for packet in packets:
            lacing += b"\xff" * (len(packet) // 255) + bytes((len(packet) % 255,))
        if len(lacing) > 255:
            raise ValueError("Ogg page over 255 segments")  # 16 packets never are
        flags = (0x02 if bos else 0) | (0x04 if eos else 0)
        header = struct.pack(
            "<4sBBqIIIB", b"OggS", 0, flags, granule, _SERIAL, self._sequence, 0, len(lacing)
        )
        self._sequence += 1
        page = bytearray(header + lacing + b"".join(packets))
        page[22:26] = struct.pack("<I", ogg_crc(bytes(page)))
        return bytes(page)


def _tags() -> bytes:
    vendor = f"callvault {opus_version()}".encode()
    return b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)


def _planar(frame: av.AudioFrame, channels: int) -> npt.NDArray[np.int16]:
    """A packed s16 frame as ``(channels, n)``."""
    return np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1, channels).T


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
