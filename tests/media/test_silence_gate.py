from __future__ import annotations

import numpy as np
import pytest

from callvault.media.silence_gate import SilenceGate

RATE = 8000
FRAME = 160


def _signal() -> np.ndarray:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 10, 4 * RATE)  # about -70 dBFS line noise
    speech = np.zeros(4 * RATE)
    speech[RATE : 2 * RATE] = 8000 * np.sin(2 * np.pi * 300 * np.arange(RATE) / RATE)
    return np.stack([noise + speech, noise]).astype(np.int16)


@pytest.mark.parametrize("chunk", [37, 160, 1000, 4 * RATE])
def test_gate_keeps_speech_with_margins_and_zeroes_noise(chunk: int) -> None:
    source = _signal()
    gate = SilenceGate(2, RATE, -50.0)
    out = np.concatenate(
        [gate.process(source[:, i : i + chunk]) for i in range(0, source.shape[1], chunk)] + [gate.flush()],
        axis=1,
    )
    assert out.shape == source.shape
    # Speech and its look-ahead / hang-over margins pass untouched.
    start, end = RATE - 3 * FRAME, 2 * RATE + 10 * FRAME
    assert np.array_equal(out[0, start:end], source[0, start:end])
    # Noise far from speech is digital silence; the all-noise channel is silent.
    assert not out[0, : start - FRAME].any()
    assert not out[0, end + FRAME : -FRAME].any()
    assert not out[1, :-FRAME].any()


def test_gate_rejects_a_positive_threshold() -> None:
    with pytest.raises(ValueError, match="below 0 dBFS"):
        SilenceGate(1, RATE, 3.0)
