"""G.711 µ-law and A-law as lookup tables.

Both directions are table lookups so a whole batch of RTP payloads converts in
one ``numpy.take``. The tables follow the ITU-T G.711 reference (Sun's
``g711.c``), which FFmpeg's ``pcm_mulaw``/``pcm_alaw`` also implement, so files
and streams agree bit for bit with other tools.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_DECODE",
    "ALAW_ENCODE",
    "ULAW_DECODE",
    "ULAW_ENCODE",
    "alaw_decode",
    "alaw_encode",
    "ulaw_decode",
    "ulaw_encode",
]


def _build_ulaw_decode() -> npt.NDArray[np.int16]:
    code = (~np.arange(256, dtype=np.int32)) & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude).astype(np.int16)


def _build_alaw_decode() -> npt.NDArray[np.int16]:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    # In A-law the sign bit set means a positive sample.
    return np.where(code & 0x80, magnitude, -magnitude).astype(np.int16)


def _build_ulaw_encode() -> npt.NDArray[np.uint8]:
    linear = np.arange(-32768, 32768, dtype=np.int32) >> 2
    mask = np.where(linear < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(linear), 8159) + 0x21
    segment_end = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
    segment = np.searchsorted(segment_end, magnitude, side="left")
    value = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    value = np.where(segment >= 8, 0x7F, value)
    table = (value ^ mask).astype(np.uint8)
    # Index by the int16 bit pattern read as uint16, so roll negatives to the top half.
    return np.roll(table, -32768)


def _build_alaw_encode() -> npt.NDArray[np.uint8]:
    linear = np.arange(-32768, 32768, dtype=np.int32) >> 3
    mask = np.where(linear >= 0, 0xD5, 0x55)
    magnitude = np.where(linear >= 0, linear, -linear - 1)
    segment_end = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])
    segment = np.searchsorted(segment_end, magnitude, side="left")
    shift = np.where(segment < 2, 1, segment)
    value = (segment << 4) | ((magnitude >> shift) & 0x0F)
    value = np.where(segment >= 8, 0x7F, value)
    table = (value ^ mask).astype(np.uint8)
    return np.roll(table, -32768)


ULAW_DECODE: Final = _build_ulaw_decode()
ALAW_DECODE: Final = _build_alaw_decode()
ULAW_ENCODE: Final = _build_ulaw_encode()
ALAW_ENCODE: Final = _build_alaw_encode()


def ulaw_decode(payload: bytes) -> npt.NDArray[np.int16]:
    """Expand µ-law bytes to 16-bit linear samples."""
    return ULAW_DECODE.take(np.frombuffer(payload, dtype=np.uint8))


def alaw_decode(payload: bytes) -> npt.NDArray[np.int16]:
    """Expand A-law bytes to 16-bit linear samples."""
    return ALAW_DECODE.take(np.frombuffer(payload, dtype=np.uint8))


def ulaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    """Compress 16-bit linear samples to µ-law bytes."""
    return ULAW_ENCODE.take(np.asarray(pcm, dtype=np.int16).view(np.uint16)).tobytes()


def alaw_encode(pcm: npt.NDArray[np.int16]) -> bytes:
    """Compress 16-bit linear samples to A-law bytes."""
    return ALAW_ENCODE.take(np.asarray(pcm, dtype=np.int16).view(np.uint16)).tobytes()
