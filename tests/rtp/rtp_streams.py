"""Test helpers: a tiny G.711 µ-law decoder and synthetic RTP streams."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callvault.rtp.packet import RtpPacket


def _ulaw_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    magnitude = (((codes & 0x0F) << 3) + 0x84) << exponent
    linear = np.where(codes & 0x80, -(magnitude - 0x84), magnitude - 0x84)
    return linear.astype(np.int16)


ULAW = _ulaw_table()


class UlawDecoder:
    """PCMU at 8 kHz: one byte per sample, stateless."""

    sample_rate = 8000

    def __init__(self, sample_rate: int = 8000) -> None:
        self.sample_rate = sample_rate  # a rate other than 8000 fakes a wideband decoder by repetition
        self.batch_calls = 0

    def decode(self, payload: bytes) -> npt.NDArray[np.int16]:
        pcm = ULAW[np.frombuffer(payload, dtype=np.uint8)]
        return np.repeat(pcm, self.sample_rate // 8000)

    def decode_batch(self, payloads: Sequence[bytes]) -> npt.NDArray[np.int16]:
        self.batch_calls += 1
        return self.decode(b"".join(payloads))

    def samples_for(self, rtp_ticks: int) -> int:
        return rtp_ticks * self.sample_rate // 8000


def marker_payload(i: int, size: int = 160) -> bytes:
    """A payload whose decoded value identifies packet ``i`` (codes 1..250 decode to distinct values)."""
    return bytes([1 + i % 250]) * size


def value_of(i: int) -> int:
    return int(ULAW[1 + i % 250])


def make_stream(
    count: int,
    *,
    start: float = 1000.0,
    ssrc: int = 0x1234,
    seq0: int = 100,
    ts0: int = 5000,
    ptime: float = 0.02,
    clock_rate: int = 8000,
    payload_type: int = 0,
    jitter: float = 0.0,
    delay: float = 0.03,
    skew_ppm: float = 0.0,
    seed: int = 1,
) -> list[tuple[float, RtpPacket]]:
    """Packets sent every ``ptime`` from wall time ``start``; arrival = send + delay + |jitter noise|."""
    rng = np.random.default_rng(seed)
    ticks = round(ptime * clock_rate)
    noise = rng.exponential(jitter, count) if jitter else np.zeros(count)
    out = []
    for i in range(count):
        ts = round(ts0 + i * ticks * (1 + skew_ppm * 1e-6))
        packet = RtpPacket(
            payload_type=payload_type,
            sequence_number=(seq0 + i) & 0xFFFF,
            timestamp=ts & 0xFFFFFFFF,
            ssrc=ssrc,
            payload=marker_payload(i, ticks),
        )
        out.append((start + i * ptime + delay + float(noise[i]), packet))
    return out


def read_pcap_udp(path: Path) -> list[tuple[float, bytes]]:
    """UDP payloads of a classic little-endian pcap with Ethernet/IPv4/UDP frames."""
    data = path.read_bytes()
    magic, _, _, _, _, _, link = struct.unpack_from("<IHHiIII", data)
    assert magic == 0xA1B2C3D4 and link == 1
    pos = 24
    out = []
    while pos + 16 <= len(data):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", data, pos)
        frame = data[pos + 16 : pos + 16 + caplen]
        pos += 16 + caplen
        if struct.unpack_from("!H", frame, 12)[0] != 0x0800 or frame[23] != 17:
            continue
        ihl = (frame[14] & 0x0F) * 4
        udp = 14 + ihl
        length = struct.unpack_from("!H", frame, udp + 4)[0]
        out.append((sec + usec / 1e6, frame[udp + 8 : udp + length]))
    return out
