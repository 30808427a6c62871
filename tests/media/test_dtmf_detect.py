"""In-band DTMF detection: every key, through G.711 and noise, and never on speech."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from tests.support.audio import voice

from callvault.media.dtmf_detect import BLOCK, DtmfDetector, digits_in
from callvault.media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode

RATE = 8000
# Written out again from ITU-T Q.23, independently of the module under test.
ROW_HZ = {"1": 697, "2": 697, "3": 697, "A": 697, "4": 770, "5": 770, "6": 770, "B": 770}
ROW_HZ |= {"7": 852, "8": 852, "9": 852, "C": 852, "*": 941, "0": 941, "#": 941, "D": 941}
COLUMN_HZ = {"1": 1209, "4": 1209, "7": 1209, "*": 1209, "2": 1336, "5": 1336, "8": 1336, "0": 1336}
COLUMN_HZ |= {"3": 1477, "6": 1477, "9": 1477, "#": 1477, "A": 1633, "B": 1633, "C": 1633, "D": 1633}
EVERY_KEY = "123A456B789C*0#D"


def keypad(
    keys: str,
    *,
    ms: int = 70,
    gap_ms: int = 60,
    amplitude: float = 6000.0,
    twist_db: float = 0.0,
    lead: int = 0,
) -> npt.NDArray[np.float64]:
    """Tone pairs of ``ms`` each, ``gap_ms`` apart, after ``lead`` samples of silence."""
    parts = [np.zeros(lead)]
    t = np.arange(RATE * ms // 1000) / RATE
    for key in keys:
        row = amplitude * np.sin(2 * np.pi * ROW_HZ[key] * t)
        column = amplitude * 10 ** (twist_db / 20) * np.sin(2 * np.pi * COLUMN_HZ[key] * t + 1.0)
        parts += [row + column, np.zeros(RATE * gap_ms // 1000)]
    return np.concatenate(parts)


def line(signal: npt.NDArray[np.float64], noise_rms: float = 0.0, seed: int = 0) -> npt.NDArray[np.int16]:
    noisy = signal + np.random.default_rng(seed).normal(0.0, noise_rms, signal.size)
    return np.clip(np.round(noisy), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("lead", [0, 37, 80, 123, 159])
@pytest.mark.parametrize("ms", [40, 50, 100])
def test_every_key_at_any_alignment_and_the_shortest_valid_length(lead: int, ms: int) -> None:
    assert digits_in(line(keypad(EVERY_KEY, ms=ms, lead=lead))) == EVERY_KEY


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_keys_survive_g711_coding_noise_twist_and_low_level(law: str) -> None:
    encode, decode = (ulaw_encode, ulaw_decode) if law == "ulaw" else (alaw_encode, alaw_decode)
    cases = [
        dict(amplitude=6000.0, noise=600.0, twist=0.0),  # 20 dB signal to noise
        dict(amplitude=6000.0, noise=100.0, twist=6.0),  # the column group 6 dB louder
        dict(amplitude=6000.0, noise=100.0, twist=-6.0),
        dict(amplitude=700.0, noise=30.0, twist=0.0),  # a quiet line (-33 dBFS per tone)
    ]
    for seed, case in enumerate(cases):
        card = "4111111111111111"
        signal = keypad(card, amplitude=case["amplitude"], twist_db=case["twist"], lead=51)
        pcm = decode(encode(line(signal, case["noise"], seed)))
        assert digits_in(pcm) == card, case


def test_what_is_not_a_key_is_not_detected() -> None:
    t = np.arange(RATE) / RATE
    assert digits_in(line(keypad("5", ms=25))) == ""  # shorter than a valid key
    assert digits_in(line(keypad("5", amplitude=200.0))) == ""  # below the level floor
    assert digits_in(line(6000 * np.sin(2 * np.pi * 697 * t))) == ""  # one group only
    assert (
        digits_in(line(4000 * (np.sin(2 * np.pi * 350 * t) + np.sin(2 * np.pi * 440 * t)))) == ""
    )  # dial tone
    chord = sum(4000 * np.sin(2 * np.pi * f * t) for f in (697, 770, 1209, 1336))
    assert digits_in(line(chord)) == ""  # two keys at once
    assert digits_in(line(np.random.default_rng(3).normal(0, 5000, RATE))) == ""  # white noise


def test_no_false_key_in_a_minute_of_speech_like_signal() -> None:
    # Pitches across male and female voices, each through µ-law as the line carries it.
    for seed in range(12):
        speech = voice(5.0, RATE, 85.0 + 17.0 * seed, seed)
        assert digits_in(ulaw_decode(ulaw_encode(speech))) == "", seed
        assert digits_in((speech // 8).astype(np.int16)) == "", seed  # a quiet talker


def test_the_detector_reports_where_keys_sounded_whatever_the_slicing() -> None:
    lead = 3 * RATE // 10 + 17
    pcm = line(keypad("95", ms=70, gap_ms=200, lead=lead), 50.0)
    whole = DtmfDetector().feed(pcm)
    assert whole is not None
    # The first key's first block starts at most a block before it and never after it.
    assert lead - BLOCK <= whole.first <= lead
    second_end = lead + 2 * 560 + 1600
    assert second_end - BLOCK <= whole.last <= second_end + BLOCK
    sliced = DtmfDetector()
    found = []
    for start in range(0, pcm.size, 173):  # RTP-like slices that do not match the block grid
        activity = sliced.feed(pcm[start : start + 173])
        if activity is not None:
            found.append(activity)
    assert min(a.first for a in found) == whole.first and max(a.last for a in found) == whole.last
    assert sliced.fed == pcm.size
