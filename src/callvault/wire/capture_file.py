"""pcap and pcapng files (gzip-compressed too), read from bytes into timestamped frames.

A capture file is untrusted input: every length is checked against what is
left before anything is sliced, so a truncated record, an absurd length or
a wrong magic number is a ``ValueError`` naming the byte offset, never an
over-read. :func:`read_frames` yields every good frame before the damage and
then raises, so the frames before a torn tail are still recorded.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER = 0x1A2B3C4D
GZIP_MAGIC = b"\x1f\x8b"
MAX_SNAPLEN = 262_144  # libpcap's own maximum; a larger record length is damage, not data
MAX_BLOCK = 16 * 1024 * 1024
MAX_INTERFACES = 1024


@dataclass(frozen=True, slots=True)
class Frame:
    """One captured link-layer frame."""

    timestamp: float  # seconds since the epoch, from the capture
    linktype: int  # LINKTYPE_* of the interface it was captured on
    data: bytes


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Inflate a gzip file, refusing more than ``max_bytes`` of output (a zip bomb) or a damaged stream."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_bytes + 1)
    except zlib.error as exc:
        raise ValueError(f"gzip stream is damaged: {exc}") from None
    if len(out) > max_bytes:
        raise ValueError(f"gzip capture inflates to more than {max_bytes} bytes")
    if not inflater.eof:
        raise ValueError("gzip stream is truncated")
    return out


def capture_kind(data: bytes) -> str:
    """``pcap``, ``pcapng`` or ``gzip``; ValueError for anything else."""
    if data[:2] == GZIP_MAGIC:
        return "gzip"
    if data[:4] in PCAP_MAGICS:
        return "pcap"
    if len(data) >= 4 and struct.unpack("<I", data[:4])[0] == PCAPNG_SHB:
        return "pcapng"
    raise ValueError(f"not a pcap or pcapng capture (magic {data[:4].hex() or 'missing'})")


def read_frames(data: bytes, max_bytes: int = 1 << 31) -> Iterator[Frame]:
    """Every frame of a pcap, pcapng or gzip-compressed capture, in file order."""
    kind = capture_kind(data)
    if kind == "gzip":
        data = gunzip(data, max_bytes)
        kind = capture_kind(data)
        if kind == "gzip":
            raise ValueError("gzip inside gzip is not a capture")
    if kind == "pcap":
        yield from _pcap(data)
    else:
        yield from _pcapng(data)


def _pcap(data: bytes) -> Iterator[Frame]:
    if len(data) < 24:
        raise ValueError(f"pcap global header is cut short at {len(data)} of 24 bytes")
    order, unit = PCAP_MAGICS[data[:4]]
    linktype = struct.unpack_from(order + "I", data, 20)[0] & 0x0FFFFFFF
    record = struct.Struct(order + "IIII")
    offset = 24
    while offset < len(data):
        if len(data) - offset < 16:
            raise ValueError(f"pcap record header at byte {offset} is cut short")
        seconds, fraction, caplen, _ = record.unpack_from(data, offset)
        if caplen > MAX_SNAPLEN:
            raise ValueError(f"pcap record at byte {offset} claims {caplen} bytes (limit {MAX_SNAPLEN})")
        start = offset + 16
        if start + caplen > len(data):
            raise ValueError(
                f"pcap record at byte {offset} is cut short ({len(data) - start} of {caplen} bytes)"
            )
        yield Frame(seconds + fraction * unit, linktype, data[start : start + caplen])
        offset = start + caplen


@dataclass
class _Interface:
    linktype: int
    unit: float


def _pcapng(data: bytes) -> Iterator[Frame]:
    order = "<"
    interfaces: list[_Interface] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 12:
            raise ValueError(f"pcapng block at byte {offset} is cut short")
        block_type = struct.unpack_from(order + "I", data, offset)[0]
        if block_type == PCAPNG_SHB:
            magic = data[offset + 8 : offset + 12]
            if magic == struct.pack("<I", PCAPNG_BYTE_ORDER):
                order = "<"
            elif magic == struct.pack(">I", PCAPNG_BYTE_ORDER):
                order = ">"
            else:
                raise ValueError(f"pcapng section at byte {offset} has a bad byte-order magic")
            interfaces = []  # interface ids are per section
        elif offset == 0:
            raise ValueError("pcapng capture does not start with a section header block")
        length = struct.unpack_from(order + "I", data, offset + 4)[0]
        if length < 12 or length % 4 or length > MAX_BLOCK:
            raise ValueError(f"pcapng block at byte {offset} has an impossible length {length}")
        if offset + length > len(data):
            raise ValueError(
                f"pcapng block at byte {offset} is cut short ({len(data) - offset} of {length} bytes)"
            )
        trailer = struct.unpack_from(order + "I", data, offset + length - 4)[0]
        if trailer != length:
            raise ValueError(f"pcapng block at byte {offset}: trailing length {trailer} != {length}")
        body = data[offset + 8 : offset + length - 4]
        frame = _block(block_type, body, order, interfaces, offset)
        if frame is not None:
            yield frame
        offset += length


def _block(block_type: int, body: bytes, order: str, interfaces: list[_Interface], at: int) -> Frame | None:
    if block_type == 1:  # interface description
        if len(body) < 8:
            raise ValueError(f"pcapng interface block at byte {at} is cut short")
        if len(interfaces) >= MAX_INTERFACES:
            raise ValueError(f"pcapng section declares more than {MAX_INTERFACES} interfaces")
        linktype = struct.unpack_from(order + "H", body, 0)[0]
        interfaces.append(_Interface(linktype, _ts_unit(body[8:], order, at)))
        return None
    if block_type == 6:  # enhanced packet
        if len(body) < 20:
            raise ValueError(f"pcapng packet block at byte {at} is cut short")
        iface, high, low, caplen, _ = struct.unpack_from(order + "IIIII", body, 0)
        return _packet(interfaces, iface, (high << 32) | low, body[20:], caplen, at)
    if block_type == 3:  # simple packet: first interface, no timestamp
        if len(body) < 4:
            raise ValueError(f"pcapng simple packet block at byte {at} is cut short")
        caplen = min(struct.unpack_from(order + "I", body, 0)[0], len(body) - 4)
        return _packet(interfaces, 0, 0, body[4:], caplen, at)
    return None  # statistics, name resolution, custom blocks: nothing to record


def _packet(
    interfaces: list[_Interface], iface: int, ticks: int, payload: bytes, caplen: int, at: int
) -> Frame:
    if iface >= len(interfaces):
        raise ValueError(f"pcapng packet at byte {at} names undeclared interface {iface}")
    if caplen > len(payload) or caplen > MAX_SNAPLEN:
        raise ValueError(f"pcapng packet at byte {at} claims {caplen} bytes, block holds {len(payload)}")
    interface = interfaces[iface]
    return Frame(ticks * interface.unit, interface.linktype, payload[:caplen])


def _ts_unit(options: bytes, order: str, at: int) -> float:
    """The interface's timestamp unit from its if_tsresol option (default microseconds)."""
    offset = 0
    while offset + 4 <= len(options):
        code, length = struct.unpack_from(order + "HH", options, offset)
        if code == 0:
            break
        if offset + 4 + length > len(options):
            raise ValueError(f"pcapng interface block at byte {at}: option {code} is cut short")
        if code == 9 and length >= 1:
            resolution = options[offset + 4]
            exponent = resolution & 0x7F
            if exponent > 63:
                raise ValueError(f"pcapng interface block at byte {at}: timestamp resolution out of range")
            return float(2.0**-exponent) if resolution & 0x80 else float(10.0**-exponent)
        offset += 4 + ((length + 3) & ~3)
    return 1e-6
