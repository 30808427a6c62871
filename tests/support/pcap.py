"""Writes the project's own RTP captures (tests/fixtures/rtp): classic pcap, Ethernet/IPv4/UDP.

``python -m tests.support.pcap`` regenerates the DTMF captures; a test checks the
committed files are exactly what this writes. Each capture holds one RFC 4733
key press as a softphone or SIPp sends it: a marked first packet, every packet
of the event on the event's start timestamp, the duration growing each 20 ms,
and the end packet sent three times (same sequence number).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

RTP_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "rtp"
DTMF_DIR = RTP_FIXTURES / "dtmf"
# Event codes (RFC 4733 section 3.2) and the file name part for each digit.
DTMF_EVENTS = {**{str(d): (d, str(d)) for d in range(10)}, "*": (10, "star"), "#": (11, "pound")}
_SRC, _DST = (bytes([192, 0, 2, 10]), 40010), (bytes([198, 51, 100, 20]), 30010)


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(payload: bytes, ip_id: int) -> bytes:
    """One Ethernet II frame carrying ``payload`` in UDP over IPv4 (UDP checksum left 0, as allowed)."""
    udp = struct.pack("!HHHH", _SRC[1], _DST[1], 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xB8, 20 + len(udp), ip_id, 0, 64, 17, 0, _SRC[0], _DST[0])
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    ethernet = bytes.fromhex("020000000002020000000001") + b"\x08\x00"
    return ethernet + ip + udp


def pcap_bytes(datagrams: Sequence[tuple[float, bytes]]) -> bytes:
    """A little-endian, microsecond pcap of UDP ``(time, payload)`` datagrams."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for index, (stamp, payload) in enumerate(datagrams):
        frame = udp_frame(payload, index + 1)
        seconds = int(stamp)
        micros = round((stamp - seconds) * 1e6)
        out.append(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)
    return b"".join(out)


def dtmf_press(event: int, *, steps: int = 8, start: float = 1_750_000_000.0) -> list[tuple[float, bytes]]:
    """RTP datagrams (payload type 101) of one key press: ``steps`` updates, then the end three times."""
    ssrc, seq, timestamp = 0x5EED0000 + event, 1000 + 40 * event, 80_000 + 16_000 * event
    packets = []
    for step in range(steps + 1):
        end = step == steps
        duration = 160 * (step + 1)
        payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
        marker = 0x80 if step == 0 else 0
        header = struct.pack("!BBHII", 0x80, marker | 101, seq + step, timestamp, ssrc)
        packets += [(start + 0.02 * step, header + payload)] * (3 if end else 1)
    return packets


def dtmf_pcaps() -> dict[str, bytes]:
    """File name → capture bytes, one per key (0-9, *, #)."""
    return {f"rfc4733_{name}.pcap": pcap_bytes(dtmf_press(event)) for event, name in DTMF_EVENTS.values()}


def main() -> None:
    DTMF_DIR.mkdir(parents=True, exist_ok=True)
    for name, data in dtmf_pcaps().items():
        (DTMF_DIR / name).write_bytes(data)


if __name__ == "__main__":
    main()
