"""A plain-socket RTP sender for the media runtime tests (independent of callvault.rtp)."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
import numpy.typing as npt


def ulaw(pcm: npt.NDArray[np.int16]) -> bytes:
    """G.711 µ-law (ITU-T G.711 segment encoding), written out here so the test does not trust the codec under test."""
    x = pcm.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(x), 32635) + 0x84
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return bytes((~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8))


def tone(freq: float, seconds: float, rate: int = 8000) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * rate)) / rate
    return np.round(np.sin(2 * np.pi * freq * t) * 0.5 * 32767).astype(np.int16)


def rtp_packets(pcm: npt.NDArray[np.int16], ssrc: int, payload_type: int = 0) -> list[bytes]:
    packets = []
    for i in range(len(pcm) // 160):
        header = struct.pack(
            "!BBHII", 0x80, payload_type, (1000 + i) & 0xFFFF, (5000 + 160 * i) & 0xFFFFFFFF, ssrc
        )
        packets.append(header + ulaw(pcm[160 * i : 160 * (i + 1)]))
    return packets


def send_paced(
    schedule: list[tuple[float, bytes, tuple[str, int]]], source: socket.socket | None = None
) -> None:
    """Send each (offset seconds, packet, address) at its absolute deadline from now.

    ``source``: the socket to send from, for a sender that goes on after a pause (the
    recorder latches each stream to the address of its first packet); the caller closes it.
    """
    sock = source if source is not None else socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    start = time.monotonic()
    for offset, packet, address in sorted(schedule, key=lambda item: item[0]):
        delay = start + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        sock.sendto(packet, address)
    if source is None:
        sock.close()


def tone_match(
    recorded: npt.NDArray[np.int16], reference: npt.NDArray[np.int16], freq: float, rate: int = 8000
) -> float:
    """Correlation of ``recorded`` with the reference tone over the first second, if the tone dominates.

    Only the first second: Opus at 12 kbit/s re-synthesises a stationary pure
    tone with a slowly drifting phase (measured: 0.99 falling to ~0.9 after
    2 s for 1000 Hz), which says nothing about placement; the dominant
    frequency of the whole channel must be the tone's as well.
    """
    n = min(recorded.size, reference.size)
    spectrum = np.abs(np.fft.rfft(recorded[:n].astype(np.float64)))
    peak = float(np.fft.rfftfreq(n, 1 / rate)[int(np.argmax(spectrum))])
    if abs(peak - freq) > 10:
        return 0.0
    from callvault.media.mixing import correlate

    head = min(n, rate)
    return correlate(recorded[:head], reference[:head], rate)
