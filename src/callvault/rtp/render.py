"""Render a stream timeline to PCM on the recording's common clock.

Every placement is decoded and written at ``anchor_wall + offset / clock_rate``
relative to ``start_wall``, the start shared by all streams of a recording, so
the streams of one call line up sample for sample. Holes stay silent (zeros),
comfort noise and payload types without a decoder render as silence, and where
two placements overlap the later one overwrites the tail of the earlier (exact
duplicates were already dropped by the timeline).

Decoders are injected (``callvault.media.payload_codecs.create_decoder`` fits
:class:`DecoderFactory`), so this module depends on no codec library.
Consecutive placements of one payload type at the stream's packet interval are
decoded with one ``decode_batch`` call and written with one slice assignment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from callvault.rtp.timeline import COMFORT_NOISE_PT, Placement, PlacementArrays, StreamTimeline

PCM = npt.NDArray[np.int16]


class PayloadDecoderLike(Protocol):
    """Decodes one RTP payload format to mono int16 PCM at ``sample_rate``."""

    @property
    def sample_rate(self) -> int: ...

    def decode(self, payload: bytes) -> PCM: ...

    def decode_batch(self, payloads: Sequence[bytes]) -> PCM: ...

    def samples_for(self, rtp_ticks: int) -> int: ...


class DecoderFactory(Protocol):
    def __call__(self, encoding: str, clock_rate: int, channels: int = 1) -> PayloadDecoderLike: ...


def decoders_for(
    payload_formats: Mapping[int, tuple[str, int, int]], factory: DecoderFactory
) -> dict[int, PayloadDecoderLike]:
    """One decoder per payload type from SDP ``rtpmap`` facts ``{pt: (encoding, clock_rate, channels)}``."""
    return {pt: factory(enc, rate, channels) for pt, (enc, rate, channels) in payload_formats.items()}


def resample_linear(samples: PCM, from_rate: int, to_rate: int) -> PCM:
    """Linear-interpolation resampling; adequate for aligning telephone-band speech."""
    if from_rate == to_rate or len(samples) == 0:
        return samples
    count = round(len(samples) * to_rate / from_rate)
    positions = np.arange(count, dtype=np.float64) * (from_rate / to_rate)
    out = np.interp(positions, np.arange(len(samples), dtype=np.float64), samples.astype(np.float64))
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)


def render_stream(
    timeline: StreamTimeline,
    decoders: Mapping[int, PayloadDecoderLike],
    out_rate: int,
    total_seconds: float | None,
    start_wall: float,
) -> PCM:
    """The stream as int16 mono PCM at ``out_rate`` starting at wall time ``start_wall``."""
    return render_placements(
        timeline.placement_arrays(),
        timeline.anchor_wall,
        timeline.clock_rate,
        decoders,
        out_rate,
        total_seconds,
        start_wall,
    )


def render_placements(
    placements: PlacementArrays | Sequence[Placement],
    anchor_wall: float,
    clock_rate: int,
    decoders: Mapping[int, PayloadDecoderLike],
    out_rate: int,
    total_seconds: float | None,
    start_wall: float,
) -> PCM:
    """Like :func:`render_stream` for placements taken out with ``drain_until`` (or any subset)."""
    if out_rate <= 0:
        raise ValueError(f"output rate must be positive: {out_rate}")
    if total_seconds is not None and total_seconds < 0:
        raise ValueError(f"total duration must not be negative: {total_seconds}")
    if clock_rate <= 0:
        raise ValueError(f"clock rate must be positive: {clock_rate}")
    if not isinstance(placements, PlacementArrays):
        placements = PlacementArrays(
            np.array([p.offset for p in placements], dtype=np.int64),
            np.array([p.payload_type for p in placements], dtype=np.int16),
            [p.payload for p in placements],
        )
    base = round((anchor_wall - start_wall) * out_rate)
    writes: list[tuple[int, PCM]] = []
    if len(placements):
        offsets = placements.offset
        pts = placements.payload_type.astype(np.int64)
        positions = base + (offsets * out_rate) // clock_rate
        for lo, hi in _runs(offsets, pts):
            decoder = decoders.get(int(pts[lo]))
            if decoder is None or pts[lo] == COMFORT_NOISE_PT:
                continue
            writes.extend(_decode_run(decoder, placements.payloads, lo, hi, offsets, positions, out_rate))
    if total_seconds is not None:
        length = round(total_seconds * out_rate)
    else:
        length = max((pos + len(block) for pos, block in writes), default=0)
    out = np.zeros(length, dtype=np.int16)
    for pos, block in writes:
        start = max(pos, 0)
        end = min(pos + len(block), length)
        if end > start:
            out[start:end] = block[start - pos : end - pos]
    return out


def _runs(offsets: npt.NDArray[np.int64], pts: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """Index ranges ``[lo, hi)`` of consecutive same-type placements spaced by the usual packet interval."""
    n = len(offsets)
    if n == 1:
        return [(0, 1)]
    gaps = np.diff(offsets)
    values, counts = np.unique(gaps, return_counts=True)
    step = values[np.argmax(counts)]
    breaks = np.flatnonzero((gaps != step) | (pts[1:] != pts[:-1])) + 1
    edges = [0, *breaks.tolist(), n]
    return list(zip(edges[:-1], edges[1:], strict=True))


def _decode_run(
    decoder: PayloadDecoderLike,
    payloads: list[bytes],
    lo: int,
    hi: int,
    offsets: npt.NDArray[np.int64],
    positions: npt.NDArray[np.int64],
    out_rate: int,
) -> list[tuple[int, PCM]]:
    rate = decoder.sample_rate
    if hi - lo > 1:
        step = int(offsets[lo + 1] - offsets[lo])
        try:
            block = decoder.decode_batch(payloads[lo:hi])
        except ValueError:
            block = None
        if block is not None and len(block) == (hi - lo) * decoder.samples_for(step):
            return [(int(positions[lo]), resample_linear(block, rate, out_rate))]
    writes: list[tuple[int, PCM]] = []
    for i in range(lo, hi):
        try:
            pcm = decoder.decode(payloads[i])
        except ValueError:
            continue
        writes.append((int(positions[i]), resample_linear(pcm, rate, out_rate)))
    return writes
