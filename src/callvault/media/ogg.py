"""Ogg page scanning (RFC 3533) and the Opus identification header (RFC 7845).

FFmpeg's Ogg demuxer resynchronises silently over damaged pages and stops
without complaint at a cut-off file, so an archive that lost its tail or had
bytes flipped would decode "successfully" into shorter or wrong audio. The
vault must tell those apart, so pages are checked here first: capture
pattern, length, CRC and the end-of-stream flag.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

__all__ = ["OggPage", "OpusHead", "ogg_crc", "parse_opus_head", "scan_pages"]

_HEADER = struct.Struct("<4sBBqIIIB")
_FLAG_EOS = 0x04

# Ogg's CRC is the MSB-first CRC-32 (poly 0x04C11DB7, init 0, no final xor),
# while zlib computes the bit-reflected variant. Reversing the bits of every
# input byte and of the result converts one into the other at C speed.
_REVERSE_BITS = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def ogg_crc(data: bytes) -> int:
    """The CRC-32 an Ogg page header carries, over ``data``."""
    reflected = ~zlib.crc32(data.translate(_REVERSE_BITS), 0xFFFFFFFF) & 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


@dataclass(frozen=True, slots=True)
class OggPage:
    offset: int
    serial: int
    sequence: int
    granule: int
    flags: int
    body: bytes
    size: int

    @property
    def end_of_stream(self) -> bool:
        return bool(self.flags & _FLAG_EOS)

    @property
    def end(self) -> int:
        """Offset just past this page."""
        return self.offset + self.size


@dataclass(frozen=True, slots=True)
class OpusHead:
    channels: int
    pre_skip: int
    input_sample_rate: int
    mapping_family: int


def scan_pages(data: bytes, *, allow_truncated: bool = False) -> list[OggPage]:
    """Split ``data`` into verified Ogg pages.

    Raises ``ValueError`` naming the byte offset of the first damaged page and
    the time of the last good one. With ``allow_truncated`` a cut-off last page
    and a missing end-of-stream page are accepted (pages up to the cut are
    returned); damaged pages never are.
    """
    pages: list[OggPage] = []
    offset = 0
    size = len(data)
    while offset < size:
        if size - offset < _HEADER.size:
            if allow_truncated and pages:
                break
            raise _damage("truncated Ogg page header", offset, pages)
        capture, version, flags, granule, serial, sequence, crc, segments = _HEADER.unpack_from(data, offset)
        if capture != b"OggS" or version != 0:
            raise _damage("corrupt Ogg page (bad capture pattern)", offset, pages)
        table_end = offset + _HEADER.size + segments
        body_end = table_end + sum(data[offset + _HEADER.size : table_end])
        if table_end > size or body_end > size:
            if allow_truncated and pages:
                break
            raise _damage("truncated Ogg page", offset, pages)
        page = bytearray(data[offset:body_end])
        page[22:26] = b"\x00\x00\x00\x00"
        if ogg_crc(bytes(page)) != crc:
            raise _damage("corrupt Ogg page (CRC mismatch)", offset, pages)
        pages.append(
            OggPage(offset, serial, sequence, granule, flags, data[table_end:body_end], body_end - offset)
        )
        offset = body_end
    if not pages:
        raise ValueError("not an audio file: empty Ogg stream")
    if not allow_truncated and not pages[-1].end_of_stream:
        raise _damage("truncated Ogg stream (no end-of-stream page)", size, pages)
    return pages


def parse_opus_head(packet: bytes) -> OpusHead | None:
    """The OpusHead of a first Ogg packet, or None when the stream is not Opus."""
    if not packet.startswith(b"OpusHead"):
        return None
    if len(packet) < 19:
        raise ValueError("corrupt Ogg Opus: OpusHead shorter than 19 bytes")
    channels, pre_skip, rate, _gain, family = struct.unpack_from("<BHIhB", packet, 9)
    if channels == 0:
        raise ValueError("corrupt Ogg Opus: OpusHead declares zero channels")
    return OpusHead(channels, pre_skip, rate, family)


def _granule_rate(first_body: bytes) -> int | None:
    """Granule positions per second for the codecs whose first packet says so."""
    if first_body.startswith(b"OpusHead"):
        return 48000
    if first_body.startswith(b"\x01vorbis") and len(first_body) >= 16:
        rate: int = struct.unpack_from("<I", first_body, 12)[0]
        return rate or None
    return None


def _damage(what: str, offset: int, pages: list[OggPage]) -> ValueError:
    granules = [p.granule for p in pages if p.granule > 0]
    rate = _granule_rate(pages[0].body) if pages else None
    if granules and rate:
        return ValueError(
            f"truncated or corrupt audio at {granules[-1] / rate:.2f} s: {what} at byte {offset}"
        )
    return ValueError(f"truncated or corrupt audio: {what} at byte {offset}")
