"""WAV renditions of an archive, produced piece by piece in bounded memory.

A WAV file is a 44-byte header plus interleaved 16-bit samples, so its size
follows from the archive's length, which Ogg states in the granule position
of its last page (minus the Opus pre-skip). :func:`wav_layout` reads that
from the first and last few kilobytes of the archive; :func:`iter_wav` then
decodes from the start and hands out just the bytes of the requested range,
one decoded block at a time, never holding the whole rendition (a 30-minute
stereo call is 58 MB of WAV at 8 kHz, 115 MB at 16 kHz).

The stated length and the decoder can disagree by a few samples at the very
end (the resampler's flush); the rendition is held to the stated length,
padded with silence or cut, so Content-Length and every range stay
consistent with one another.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

import av
import numpy as np

from callvault.media.ogg import parse_opus_head, scan_pages
from callvault.media.wav import WAV_HEADER_SIZE

__all__ = ["WavLayout", "iter_samples", "iter_wav", "wav_header", "wav_layout"]

_OPUS_GRANULE_RATE: Final = 48000
_OPUS_RATES: Final = (8000, 12000, 16000, 24000, 48000)
_PAGE_HEADER: Final = struct.Struct("<4sBBqIIIB")
# A span is decoded from a page at least this long before its start. The Opus decoder needs
# 80 ms of pre-roll; the decoder's and resampler's floating-point state takes longer to match
# that of decoding the whole archive to the last bit (0.5 s left ±1 differences in the first
# second; 3 s gave identical samples, tested sample for sample).
SEEK_LEAD_SECONDS: Final = 3.0


class SeekableFile(Protocol):
    """What the demuxer needs of the archive: a seekable file object."""

    def read(self, size: int = -1, /) -> bytes: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...

    def tell(self) -> int: ...


@dataclass(frozen=True)
class WavLayout:
    channels: int
    sample_rate: int
    samples: int

    @property
    def size(self) -> int:
        return WAV_HEADER_SIZE + self.samples * self.channels * 2


def wav_layout(head: bytes, tail: bytes) -> WavLayout:
    """The WAV an Ogg Opus archive renders to, from its first page(s) and its last bytes."""
    first = scan_pages(head, allow_truncated=True)[0]
    opus = parse_opus_head(first.body)
    if opus is None:
        raise ValueError("not an Ogg Opus archive: no OpusHead in the first page")
    rate = opus.input_sample_rate if opus.input_sample_rate in _OPUS_RATES else _OPUS_GRANULE_RATE
    granule = _last_granule(tail)
    samples48 = max(0, granule - opus.pre_skip)
    samples = -(-samples48 * rate // _OPUS_GRANULE_RATE)  # ceiling
    return WavLayout(opus.channels, rate, samples)


def _last_granule(tail: bytes) -> int:
    at = len(tail)
    while (at := tail.rfind(b"OggS", 0, at)) >= 0:
        if at + _PAGE_HEADER.size <= len(tail):
            granule = _PAGE_HEADER.unpack_from(tail, at)[3]
            if granule >= 0:  # -1: no packet ends on this page
                return int(granule)
    raise ValueError("not an Ogg Opus archive: no page with a granule position at its end")


def wav_header(layout: WavLayout) -> bytes:
    data = layout.samples * layout.channels * 2
    if data > 0xFFFFFFFF - 36:
        raise ValueError(f"{data} bytes of samples do not fit a WAV file (4 GiB limit)")
    align = layout.channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        layout.channels,
        layout.sample_rate,
        layout.sample_rate * align,
        align,
        16,
        b"data",
        data,
    )


def iter_wav(archive: SeekableFile, layout: WavLayout, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start:end`` of the WAV rendition of ``archive`` (a seekable file object)."""
    if not 0 <= start <= end <= layout.size:
        raise ValueError(f"range {start}-{end} outside a WAV of {layout.size} bytes")
    position = 0
    for piece in _pieces(archive, layout):
        piece_end = position + len(piece)
        if piece_end > start:
            yield piece[max(0, start - position) : min(len(piece), end - position)]
        position = piece_end
        if position >= end:
            return


def _pieces(archive: SeekableFile, layout: WavLayout) -> Iterator[bytes]:
    yield wav_header(layout)
    remaining = layout.samples * layout.channels * 2
    with av.open(archive, mode="r") as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16p", rate=layout.sample_rate)
        frames = container.decode(stream)
        for frame in _then_flush(frames):
            for block in resampler.resample(frame):
                pcm = block.to_ndarray()[: layout.channels]
                data = np.ascontiguousarray(pcm.T).astype("<i2", copy=False).tobytes()[:remaining]
                remaining -= len(data)
                if data:
                    yield data
                if remaining == 0:
                    return
    # The decoder stopped a few samples short of the stated length: silence makes up the rest.
    while remaining > 0:
        pad = min(remaining, 65536)
        remaining -= pad
        yield bytes(pad)


def iter_samples(archive: SeekableFile, layout: WavLayout, first: int, last: int) -> Iterator[bytes]:
    """Interleaved 16-bit samples ``first:last`` of the rendition (no header), decoded from a
    page shortly before ``first`` instead of from the start: a clip at the end of a long call
    costs the decoding of the clip, not of the call."""
    if not 0 <= first <= last <= layout.samples:
        raise ValueError(f"samples {first}-{last} outside a rendition of {layout.samples}")
    frame_bytes = layout.channels * 2
    position = first
    with av.open(archive, mode="r") as container:
        stream = container.streams.audio[0]
        lead = first / layout.sample_rate - SEEK_LEAD_SECONDS
        if lead > 0 and stream.time_base is not None:
            container.seek(int(lead / stream.time_base), stream=stream, backward=True)
        resampler = av.AudioResampler(format="s16p", rate=layout.sample_rate)
        at: int | None = None if lead > 0 else 0
        for frame in _then_flush(container.decode(stream)):
            for block in resampler.resample(frame):
                if at is None:
                    if block.pts is None or block.time_base is None:
                        raise ValueError("decoded audio carries no timestamps to seek by")
                    at = round(float(block.pts * block.time_base) * layout.sample_rate)
                pcm = np.ascontiguousarray(block.to_ndarray()[: layout.channels].T)
                start, stop = max(position, at), min(last, at + pcm.shape[0])
                at += pcm.shape[0]
                if stop > start:
                    yield (
                        pcm[start - (at - pcm.shape[0]) : stop - (at - pcm.shape[0])].astype("<i2").tobytes()
                    )
                    position = stop
                if position >= last:
                    return
    # The decoder stopped a few samples short of the stated length: silence makes up the rest.
    if last > position:
        yield bytes((last - position) * frame_bytes)


def _then_flush(frames: Iterator[av.AudioFrame]) -> Iterator[av.AudioFrame | None]:
    yield from frames
    yield None
