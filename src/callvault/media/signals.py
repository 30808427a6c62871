"""Deterministic test signals: tones and a speech-like babble.

Tests and benchmarks need speech-shaped audio (voiced harmonics under moving
formants, syllable rhythm, pauses, fricatives) without a speech synthesiser on
the machine. A seed fixes the output exactly, so expected values can be
asserted.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["synth_speech_like", "tone"]

# (F1, F2, F3) in Hz for five vowels of a male-ish voice.
_VOWELS = np.array(
    [
        (730.0, 1090.0, 2440.0),
        (530.0, 1840.0, 2480.0),
        (270.0, 2290.0, 3010.0),
        (570.0, 840.0, 2410.0),
        (300.0, 870.0, 2240.0),
    ]
)
_BANDWIDTHS = np.array([90.0, 110.0, 170.0])
_FORMANT_GAINS = np.array([1.0, 0.6, 0.3])


def tone(freq: float, seconds: float, rate: int, amplitude: float = 0.3) -> npt.NDArray[np.int16]:
    """A sine tone; ``amplitude`` is a fraction of full scale."""
    if rate <= 0 or seconds < 0:
        raise ValueError(f"invalid tone rate {rate} or duration {seconds}")
    t = np.arange(round(seconds * rate)) / rate
    return np.round(np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype(np.int16)


def synth_speech_like(
    seconds: float, rate: int, seed: int = 0, amplitude: float = 0.5
) -> npt.NDArray[np.int16]:
    """Speech-like mono int16 audio: formant-filtered pulse trains in syllables with pauses.

    Different seeds give different voices (pitch) and different syllable
    sequences, so two seeds make two clearly uncorrelated talkers.
    """
    if rate < 8000 or seconds <= 0:
        raise ValueError(f"invalid speech rate {rate} or duration {seconds}")
    rng = np.random.default_rng(seed)
    total = round(seconds * rate)
    out = np.zeros(total, dtype=np.float64)
    base_f0 = rng.uniform(95.0, 230.0)
    position = int(rng.uniform(0.05, 0.3) * rate)
    syllables_left_in_word = int(rng.integers(1, 4))
    while position < total:
        length = int(rng.uniform(0.12, 0.30) * rate)
        syllable = _voiced_syllable(length, rate, base_f0, rng)
        if rng.random() < 0.35:
            # Fricatives carry far less energy than vowels (about -20 dB).
            level = 0.1 * float(np.sqrt(np.mean(syllable**2)))
            burst = _fricative(int(rng.uniform(0.04, 0.09) * rate), rate, rng) * level
            syllable = np.concatenate([burst, syllable])
        end = min(total, position + syllable.size)
        out[position:end] += syllable[: end - position]
        position = end
        syllables_left_in_word -= 1
        if syllables_left_in_word == 0:
            syllables_left_in_word = int(rng.integers(1, 4))
            position += int(rng.uniform(0.08, 0.6) * rate)
        else:
            position += int(rng.uniform(0.0, 0.04) * rate)
    peak = float(np.max(np.abs(out))) or 1.0
    return np.round(out / peak * amplitude * 32767).astype(np.int16)


def _voiced_syllable(
    length: int, rate: int, base_f0: float, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    glide = rng.uniform(-0.25, 0.2)
    f0 = base_f0 * rng.uniform(0.85, 1.2) * (1.0 + glide * np.linspace(0.0, 1.0, length))
    phase = np.cumsum(f0 / rate)
    excitation = np.diff(np.floor(phase), prepend=0.0)
    excitation += rng.normal(0.0, 0.02, length)
    start, end = _VOWELS[rng.integers(len(_VOWELS))], _VOWELS[rng.integers(len(_VOWELS))]
    # Two halves with different vowels give the formant movement of real syllables.
    half = length // 2
    shaped = np.concatenate(
        [
            _shape(excitation[:half], rate, start),
            _shape(excitation[half:], rate, (start + end) / 2),
        ]
    )
    envelope = np.sin(np.linspace(0.0, np.pi, length)) ** 0.6
    result: npt.NDArray[np.float64] = shaped * envelope * rng.uniform(0.5, 1.0)
    return result


def _shape(
    excitation: npt.NDArray[np.float64], rate: int, formants: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    spectrum = np.fft.rfft(excitation)
    freqs = np.fft.rfftfreq(excitation.size, 1.0 / rate)
    response = np.zeros_like(freqs)
    for centre, width, gain in zip(formants, _BANDWIDTHS, _FORMANT_GAINS, strict=True):
        response += gain / (1.0 + ((freqs - centre) / (width / 2)) ** 2)
    response /= 1.0 + freqs / 400.0  # glottal source falls about 6 dB per octave
    shaped: npt.NDArray[np.float64] = np.fft.irfft(spectrum * response, excitation.size)
    return shaped


def _fricative(length: int, rate: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    noise = rng.normal(0.0, 1.0, length)
    spectrum = np.fft.rfft(noise)
    freqs = np.fft.rfftfreq(length, 1.0 / rate)
    low = min(2500.0, rate * 0.3)
    spectrum[freqs < low] = 0
    burst = np.fft.irfft(spectrum, length) * np.hanning(length)
    burst /= float(np.sqrt(np.mean(burst**2))) or 1.0
    return burst
