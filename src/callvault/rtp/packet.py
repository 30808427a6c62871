"""RTP packets (RFC 3550 section 5.1): parse, serialize, and a numpy header parser for batches.

The single-packet path (:func:`RtpPacket.parse`) is for tests and tools; the
recording renderer reads journals of raw datagrams and uses
:func:`parse_headers`, which validates and decodes every fixed header of a batch
with a handful of vectorised numpy operations instead of one Python call per
packet.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

RTP_VERSION = 2
RTP_HEADER_LENGTH = 12

_HEADER = struct.Struct("!BBHII")

# With rtcp-mux (RFC 5761) the second byte separates RTCP packet types 200-204
# (SR, RR, SDES, BYE, APP) from RTP, whose marker bit plus payload type would
# otherwise alias them as payload types 72-76.
_RTCP_FIRST = 200
_RTCP_LAST = 204


def is_rtcp(data: bytes) -> bool:
    """True when ``data`` is an RTCP packet multiplexed on the RTP port (RFC 5761 section 4)."""
    return len(data) >= 2 and _RTCP_FIRST <= data[1] <= _RTCP_LAST


@dataclass(slots=True)
class RtpPacket:
    """One RTP packet. ``padding_size`` counts the padding octets including the count octet."""

    payload_type: int = 0
    sequence_number: int = 0
    timestamp: int = 0
    ssrc: int = 0
    payload: bytes = b""
    marker: bool = False
    csrc: list[int] = field(default_factory=list)
    extension_profile: int | None = None
    extension: bytes = b""
    padding_size: int = 0
    version: int = RTP_VERSION

    @property
    def padding(self) -> bool:
        return self.padding_size > 0

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        length = len(data)
        if length < RTP_HEADER_LENGTH:
            raise ValueError(f"RTP packet length is less than {RTP_HEADER_LENGTH} bytes: {length}")
        first, second, sequence_number, timestamp, ssrc = _HEADER.unpack_from(data)
        version = first >> 6
        if version != RTP_VERSION:
            raise ValueError(f"RTP packet has invalid version {version}")
        csrc_count = first & 0x0F
        pos = RTP_HEADER_LENGTH + 4 * csrc_count
        if pos > length:
            raise ValueError(f"RTP packet has truncated CSRC list: {csrc_count} CSRCs in {length} bytes")
        csrc = list(struct.unpack_from(f"!{csrc_count}I", data, RTP_HEADER_LENGTH)) if csrc_count else []
        extension_profile: int | None = None
        extension = b""
        if first & 0x10:
            if pos + 4 > length:
                raise ValueError("RTP packet has truncated extension header")
            extension_profile, words = struct.unpack_from("!HH", data, pos)
            ext_end = pos + 4 + 4 * words
            if ext_end > length:
                raise ValueError(f"RTP packet extension length {words} words exceeds the packet")
            extension = data[pos + 4 : ext_end]
            pos = ext_end
        end = length
        padding_size = 0
        if first & 0x20:
            padding_size = data[-1]
            if padding_size == 0:
                raise ValueError("RTP packet has padding flag set but padding count 0")
            if pos + padding_size > length:
                raise ValueError(f"RTP packet padding count {padding_size} exceeds the payload")
            end = length - padding_size
        return cls(
            payload_type=second & 0x7F,
            sequence_number=sequence_number,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=data[pos:end],
            marker=bool(second & 0x80),
            csrc=csrc,
            extension_profile=extension_profile,
            extension=extension,
            padding_size=padding_size,
            version=version,
        )

    def serialize(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"RTP payload type out of range: {self.payload_type}")
        if len(self.csrc) > 15:
            raise ValueError(f"RTP packet has too many CSRCs: {len(self.csrc)}")
        if len(self.extension) % 4:
            raise ValueError("RTP header extension length must be a multiple of 4 bytes")
        if not 0 <= self.padding_size <= 255:
            raise ValueError(f"RTP padding size out of range: {self.padding_size}")
        first = (self.version << 6) | len(self.csrc)
        if self.padding_size:
            first |= 0x20
        if self.extension_profile is not None:
            first |= 0x10
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [
            _HEADER.pack(first, second, self.sequence_number & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)
        ]
        if self.csrc:
            parts.append(struct.pack(f"!{len(self.csrc)}I", *self.csrc))
        if self.extension_profile is not None:
            parts.append(struct.pack("!HH", self.extension_profile, len(self.extension) // 4))
            parts.append(self.extension)
        parts.append(self.payload)
        if self.padding_size:
            parts.append(bytes(self.padding_size - 1) + bytes([self.padding_size]))
        return b"".join(parts)


@dataclass(slots=True, frozen=True)
class RtpHeaders:
    """Fixed headers of a batch of datagrams, one array element per datagram.

    ``valid`` is False for datagrams that are not well-formed RTP (and for RTCP
    multiplexed on the same port); their other fields are meaningless.
    ``payload_start``/``payload_end`` index into each datagram.
    """

    valid: npt.NDArray[np.bool_]
    rtcp: npt.NDArray[np.bool_]
    payload_type: npt.NDArray[np.int16]
    marker: npt.NDArray[np.bool_]
    sequence_number: npt.NDArray[np.int64]
    timestamp: npt.NDArray[np.int64]
    ssrc: npt.NDArray[np.int64]
    payload_start: npt.NDArray[np.int64]
    payload_end: npt.NDArray[np.int64]

    def payloads(self, datagrams: Sequence[bytes]) -> list[bytes]:
        """Payload of each datagram (``b""`` for invalid ones)."""
        starts = self.payload_start.tolist()
        ends = self.payload_end.tolist()
        ok = self.valid.tolist()
        return [d[s:e] if v else b"" for d, s, e, v in zip(datagrams, starts, ends, ok, strict=True)]


def _be16(buf: npt.NDArray[np.uint8], at: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return (buf[at].astype(np.int64) << 8) | buf[at + 1]


def _be32(buf: npt.NDArray[np.uint8], at: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    return (_be16(buf, at) << 16) | _be16(buf, at + 2)


def parse_headers(datagrams: Sequence[bytes]) -> RtpHeaders:
    """Validate and decode the RTP headers of many datagrams at once (same rules as ``parse``)."""
    count = len(datagrams)
    lengths = np.fromiter(map(len, datagrams), dtype=np.int64, count=count)
    starts = np.zeros(count, dtype=np.int64)
    if count > 1:
        np.cumsum(lengths[:-1], out=starts[1:])
    # Trailing zeros let every gather below stay in bounds even for short datagrams.
    buf = np.frombuffer(b"".join(datagrams) + bytes(RTP_HEADER_LENGTH + 64), dtype=np.uint8)
    first = buf[starts].astype(np.int64)
    second = buf[starts + 1].astype(np.int64)
    valid = (lengths >= RTP_HEADER_LENGTH) & ((first >> 6) == RTP_VERSION)
    rtcp = (lengths >= 2) & (second >= _RTCP_FIRST) & (second <= _RTCP_LAST)
    valid &= ~rtcp
    header_end = RTP_HEADER_LENGTH + 4 * (first & 0x0F)
    valid &= header_end <= lengths
    has_ext = (first & 0x10) != 0
    ext_at = starts + np.where(has_ext & valid & (header_end + 4 <= lengths), header_end, 0)
    ext_words = _be16(buf, ext_at + 2)
    valid &= ~has_ext | (header_end + 4 <= lengths)
    payload_start = np.where(has_ext, header_end + 4 + 4 * ext_words, header_end)
    valid &= payload_start <= lengths
    has_pad = (first & 0x20) != 0
    last_at = starts + np.maximum(lengths - 1, 0)
    pad = np.where(has_pad, buf[last_at].astype(np.int64), 0)
    valid &= ~has_pad | ((pad > 0) & (payload_start + pad <= lengths))
    return RtpHeaders(
        valid=valid,
        rtcp=rtcp,
        payload_type=(second & 0x7F).astype(np.int16),
        marker=(second & 0x80) != 0,
        sequence_number=_be16(buf, starts + 2),
        timestamp=_be32(buf, starts + 4),
        ssrc=_be32(buf, starts + 8),
        payload_start=payload_start,
        payload_end=lengths - pad,
    )
