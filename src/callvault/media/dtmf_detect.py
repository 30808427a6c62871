"""In-band DTMF: keypad tones found in decoded audio, so a PCI pause can start on the first digit.

A DTMF key is two sine tones at once, one of the four row frequencies (697,
770, 852, 941 Hz) and one of the four column frequencies (1209, 1336, 1477,
1633 Hz). The detector cuts the audio into blocks of 20 ms (160 samples at
8 kHz) and measures the eight frequencies in each block with the Goertzel
transform, evaluated as one matrix product over all blocks of a batch (the
eight DFT coefficients at exactly those frequencies, not at the nearest bin).

A block holds a key when (ITU-T Q.24's sense of a valid signal, loosely):

* the strongest row and column tone are each loud enough (``min_amplitude``);
* the twist between them is within ``max_twist_db`` either way (a line tilts
  one group against the other; level changes move both);
* each is well above the second strongest of its group (``min_peak_ratio``),
  which rules out wideband noise and chords;
* the two tones carry most of the block's energy (``min_purity``): speech,
  whose energy is spread over many harmonics and formants, does not.

A key counts once two consecutive blocks agree on it (40 ms; a key shorter
than that is not a valid DTMF signal), and its activity runs back to the
first of those blocks. A tone that fills only part of a block weakens the
purity in proportion, so the thresholds accept a block half filled, and a
40 ms tone, however it falls on the block grid, always gives two such blocks.

The detector is sans-IO and keeps only the last block's verdict and the
samples of an unfinished block between calls; it reports *that* a key was
pressed and where, never which one, except through :func:`digits_in` which
tests use to check the classification.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

RATE = 8000
BLOCK = 160  # 20 ms
ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYS = ("123A", "456B", "789C", "*0#D")


def _basis(rate: int, block: int) -> npt.NDArray[np.float32]:
    n = np.arange(block, dtype=np.float64)[:, None]
    freqs = np.array(ROWS + COLUMNS, dtype=np.float64)[None, :]
    angle = 2.0 * np.pi * n * freqs / rate
    return np.concatenate([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32)


_BASIS = _basis(RATE, BLOCK)


@dataclass(frozen=True)
class DetectorLimits:
    min_amplitude: float = 400.0  # per tone, of int16 full scale (about -38 dBFS)
    max_twist_db: float = 8.0
    min_peak_ratio: float = 6.3  # 8 dB over the second strongest of the group
    min_purity: float = 0.45  # share of the block's power in the two tones


@dataclass(frozen=True)
class KeyActivity:
    """Where keys sounded in what was fed: sample positions counted from the first sample ever fed."""

    first: int  # first sample of the first block of a key
    last: int  # first sample after the last block holding a key


# Blocks per matrix product: beyond a few hundred rows OpenBLAS spreads one product over
# threads, which on a busy (or, in capture, pinned) core costs far more than it saves.
_CHUNK = 128


def classify(blocks: npt.NDArray[np.float32], limits: DetectorLimits = DetectorLimits()) -> list[int]:
    """Per block (rows of ``blocks``, BLOCK samples each), the key index 0-15 or -1."""
    count = blocks.shape[0]
    if count == 0:
        return []
    keys = np.full(count, -1, dtype=np.int64)
    mean_power = np.einsum("ij,ij->i", blocks, blocks) * (1.0 / BLOCK)  # of a block: A^2 / 2 per sine
    # Two tones of at least min_amplitude each put at least min_amplitude^2 into a block (a tone
    # filling part of it, less, but then its amplitude reads lower in proportion): quieter blocks,
    # the silences and noise of a call, are keyless without a transform.
    loud = np.flatnonzero(mean_power >= limits.min_amplitude**2)
    for at in range(0, loud.size, _CHUNK):
        rows = loud[at : at + _CHUNK]
        keys[rows] = _keys(blocks[rows], mean_power[rows], limits)
    return keys.tolist()


def _keys(
    blocks: npt.NDArray[np.float32], mean_power: npt.NDArray[np.float32], limits: DetectorLimits
) -> npt.NDArray[np.int64]:
    coefficients = blocks @ _BASIS
    coefficients *= coefficients
    # A sine of amplitude A gives |X| = A * BLOCK / 2 at its own frequency: A^2 = |X|^2 * 4 / BLOCK^2.
    amplitude2 = (coefficients[:, :8] + coefficients[:, 8:]) * (4.0 / (BLOCK * BLOCK))
    rows, columns = amplitude2[:, :4], amplitude2[:, 4:]
    row_power = rows.max(axis=1)
    column_power = columns.max(axis=1)
    # Purity first: it rejects speech at once, so most blocks end here.
    pure = (row_power + column_power) * 0.5 >= limits.min_purity * mean_power
    if not pure.any():
        return np.full(blocks.shape[0], -1, dtype=np.int64)
    floor = limits.min_amplitude**2
    twist = 10.0 ** (limits.max_twist_db / 10.0)
    row_second = np.partition(rows, 2, axis=1)[:, 2]
    column_second = np.partition(columns, 2, axis=1)[:, 2]
    ok = (
        pure
        & (row_power >= floor)
        & (column_power >= floor)
        & (column_power <= row_power * twist)
        & (row_power <= column_power * twist)
        & (row_power >= row_second * limits.min_peak_ratio)
        & (column_power >= column_second * limits.min_peak_ratio)
    )
    return np.where(ok, np.argmax(rows, axis=1) * 4 + np.argmax(columns, axis=1), -1)


class DtmfDetector:
    """Feeds 8 kHz int16 audio in any slices; reports key activity, never the key."""

    def __init__(self, limits: DetectorLimits = DetectorLimits()) -> None:
        self._limits = limits
        self._pending = np.zeros(0, dtype=np.float32)
        self._fed = 0  # samples fed so far (the position of the next sample)
        self._previous = -1  # the last whole block's key
        self._sounding = False  # the previous block belonged to a confirmed key

    @property
    def fed(self) -> int:
        return self._fed

    @property
    def aligned(self) -> bool:
        """No samples of an unfinished block are waiting: the next sample starts a block."""
        return self._pending.size == 0

    def feed(self, pcm: npt.NDArray[np.int16] | npt.NDArray[np.float32]) -> KeyActivity | None:
        """Account ``pcm`` (following what was fed before); the key activity in its whole blocks."""
        samples = np.concatenate([self._pending, pcm.astype(np.float32)]) if self._pending.size else pcm
        start = self._fed - self._pending.size  # position of samples[0]
        self._fed += int(pcm.size)
        whole = samples.size // BLOCK
        self._pending = np.asarray(samples[whole * BLOCK :], dtype=np.float32)
        if whole == 0:
            return None
        blocks = np.asarray(samples[: whole * BLOCK], dtype=np.float32).reshape(whole, BLOCK)
        return self._follow(classify(blocks, self._limits), start)

    def feed_keys(self, keys: list[int]) -> KeyActivity | None:
        """Account whole blocks already classified (:func:`classify` over many streams at once);
        only while :attr:`aligned`."""
        if not self.aligned:
            raise ValueError("feed_keys needs the detector at a block boundary")
        start = self._fed
        self._fed += len(keys) * BLOCK
        return self._follow(keys, start)

    def _follow(self, keys: list[int], start: int) -> KeyActivity | None:
        if self._previous < 0 and max(keys, default=-1) < 0:
            return None  # the usual batch: no key anywhere
        first: int | None = None
        last = 0
        for i, key in enumerate(keys):
            at = start + i * BLOCK
            if key >= 0 and key == self._previous:
                if not self._sounding:
                    at -= BLOCK  # the key began in the block before, which confirmed nothing yet
                self._sounding = True
                first = at if first is None else min(first, at)
                last = start + (i + 1) * BLOCK
            else:
                self._sounding = False
            self._previous = key
        return KeyActivity(first, last) if first is not None else None


def digits_in(pcm: npt.NDArray[np.int16], limits: DetectorLimits = DetectorLimits()) -> str:
    """The keys in ``pcm``, one per confirmed run of blocks (for tests of the classification)."""
    whole = pcm.size // BLOCK
    keys = classify(pcm[: whole * BLOCK].astype(np.float32).reshape(whole, BLOCK), limits)
    found: list[str] = []
    previous, sounding = -1, False
    for key in keys:
        confirmed = key >= 0 and key == previous
        if confirmed and not sounding:
            found.append(KEYS[key // 4][key % 4])
        sounding = confirmed
        previous = key
    return "".join(found)
