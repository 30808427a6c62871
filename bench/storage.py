"""Storage cost and intelligibility of the archive format against G.711 WAV and MP3.

Run: ``python bench/storage.py`` (needs espeak-ng, pystoi, pesq). Two espeak
voices talk, one per channel; every format is encoded and decoded in the same
run and scored per channel with STOI and PESQ against the source. Two
scenes: both parties talking all the time (the worst case for size), and a
turn-taking call with a faint line-noise floor (what recordings look like).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from pesq import pesq
from pystoi import stoi

from callvault.media.archive import (
    DEFAULT_BITRATE_PER_CHANNEL,
    DEFAULT_COMPLEXITY,
    DEFAULT_SILENCE_GATE_DBFS,
    encode_archive,
)
from callvault.media.decoding import decode_audio
from callvault.media.mixing import resample, stack_stereo

SENTENCES = {
    "en-us": (
        "Hello, thank you for calling customer support. My account number is four one one one, "
        "and I would like a refund for the order I placed last Tuesday. Could you please check the "
        "delivery status and tell me when the package will arrive? I have been waiting for almost "
        "two weeks now, and nobody has called me back. The tracking number starts with seven nine "
        "three, and the order was for two pairs of running shoes and a rain jacket."
    ),
    "en-gb+f3": (
        "Certainly, I can help you with that. Let me pull up your account. I can see the order was "
        "shipped on Monday from our warehouse in Denver, and it should arrive by Friday afternoon. "
        "If it does not arrive by then, I will issue a full refund to your card ending in five two. "
        "Is there anything else I can do for you today? Thank you for your patience, and have a "
        "lovely evening."
    ),
}


@dataclass
class Row:
    name: str
    bytes_per_minute: float
    speed: float | None
    scores: list[tuple[float, float]]


def speak(voice: str, text: str, rate: int, seconds: float) -> np.ndarray:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "165", "-w", str(path), text], check=True)
        audio = decode_audio(path.read_bytes())
    speech = resample(audio.pcm[0], audio.sample_rate, rate)
    speech = (speech.astype(np.float64) * (0.5 * 32767 / max(1, np.abs(speech).max()))).astype(np.int16)
    return np.resize(speech, int(seconds * rate))


def pyav_encode(fmt: str, codec: str, pcm: np.ndarray, rate: int, bit_rate: int | None = None) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        assert isinstance(stream, av.audio.stream.AudioStream)
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(pcm.T).reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate = rate
        frame.pts = 0
        for packet in list(stream.encode(frame)) + list(stream.encode(None)):
            container.mux(packet)
    return buffer.getvalue()


def aligned(reference: np.ndarray, degraded: np.ndarray, rate: int) -> np.ndarray:
    """Shift ``degraded`` by its codec delay (searched within ±60 ms) to line up with ``reference``."""
    span = int(0.06 * rate)
    n = min(reference.size, degraded.size, 10 * rate)
    size = 1 << int(np.ceil(np.log2(2 * n)))
    ref = np.fft.rfft(reference[:n].astype(np.float64), size)
    deg = np.fft.rfft(degraded[:n].astype(np.float64), size)
    full = np.fft.irfft(deg * np.conj(ref), size)  # full[k]: degraded delayed by k
    lags = np.concatenate([np.arange(0, span + 1), np.arange(-span, 0)])
    best_lag = int(lags[np.argmax(np.concatenate([full[: span + 1], full[size - span :]]))])
    shifted = (
        degraded[best_lag:] if best_lag >= 0 else np.concatenate([np.zeros(-best_lag, np.int16), degraded])
    )
    out = np.zeros(reference.size, dtype=np.float64)
    out[: min(reference.size, shifted.size)] = shifted[: reference.size]
    return out


def score(source: np.ndarray, data: bytes, rate: int) -> list[tuple[float, float]]:
    decoded = decode_audio(data)
    pcm = decoded.pcm if decoded.sample_rate == rate else resample(decoded.pcm, decoded.sample_rate, rate)
    results = []
    for channel in range(2):
        reference = source[channel].astype(np.float64)
        degraded = aligned(source[channel], pcm[channel], rate)
        results.append(
            (
                float(stoi(reference, degraded, rate, extended=False)),
                float(pesq(rate, reference, degraded, "nb" if rate == 8000 else "wb")),
            )
        )
    return results


def measure(
    name: str, encode: Callable[[np.ndarray], bytes], source: np.ndarray, rate: int, timed: bool
) -> Row:
    started = time.perf_counter()
    data = encode(source)
    elapsed = time.perf_counter() - started
    seconds = source.shape[1] / rate
    return Row(
        name, len(data) * 60 / seconds, seconds / elapsed if timed else None, score(source, data, rate)
    )


def scenes(rate: int, seconds: float) -> dict[str, np.ndarray]:
    left = speak("en-us", SENTENCES["en-us"], rate, seconds)
    right = speak("en-gb+f3", SENTENCES["en-gb+f3"], rate, seconds)
    turn = (np.arange(left.size) // int(6 * rate)) % 2 == 0
    noise = np.random.default_rng(0).normal(0.0, 12.0, (2, left.size))  # about -68 dBFS line noise
    taking_turns = stack_stereo(
        np.where(turn, left, 0).astype(np.int16), np.where(turn, 0, right).astype(np.int16)
    )
    taking_turns = np.clip(taking_turns + noise, -32768, 32767).astype(np.int16)
    return {"both talking": stack_stereo(left, right), "taking turns + line noise": taking_turns}


def run(rate: int, seconds: float) -> None:
    for scene, source in scenes(rate, seconds).items():
        rows = []
        if rate == 8000:
            rows.append(
                measure(
                    "G.711 µ-law WAV",
                    lambda pcm: pyav_encode("wav", "pcm_mulaw", pcm, rate),
                    source,
                    rate,
                    False,
                )
            )
        else:
            rows.append(
                measure(
                    "PCM 16-bit WAV",
                    lambda pcm: pyav_encode("wav", "pcm_s16le", pcm, rate),
                    source,
                    rate,
                    False,
                )
            )
        rows.append(
            measure(
                "MP3 stereo 32 kbit/s",
                lambda pcm: pyav_encode("mp3", "mp3", pcm, rate, 32000),
                source,
                rate,
                True,
            )
        )
        variants = (
            ("archive DEFAULT", DEFAULT_BITRATE_PER_CHANNEL, DEFAULT_COMPLEXITY, DEFAULT_SILENCE_GATE_DBFS),
            ("  same, gate off", DEFAULT_BITRATE_PER_CHANNEL, DEFAULT_COMPLEXITY, None),
            ("  12k/ch cx0", 12000, 0, DEFAULT_SILENCE_GATE_DBFS),
            ("  8k/ch cx5", 8000, 5, DEFAULT_SILENCE_GATE_DBFS),
            ("  12k/ch cx10", 12000, 10, DEFAULT_SILENCE_GATE_DBFS),
        )
        for name, per_channel, complexity, gate in variants:
            label = (
                f"{name} ({per_channel // 1000}k/ch cx{complexity})" if name.startswith("archive") else name
            )
            rows.append(
                measure(
                    label,
                    lambda pcm, b=per_channel, c=complexity, g=gate: encode_archive(pcm, rate, b, c, g),  # type: ignore[misc]
                    source,
                    rate,
                    True,
                )
            )
        print(f"\n{rate // 1000} kHz, {seconds:.0f} s, {scene}")
        print(f"{'format':30} {'KB/min':>8} {'speed':>8} {'STOI L/R':>13} {'PESQ L/R':>11}")
        for row in rows:
            speed = f"{row.speed:.0f}x" if row.speed else "-"
            (stoi_l, pesq_l), (stoi_r, pesq_r) = row.scores
            print(
                f"{row.name:30} {row.bytes_per_minute / 1000:8.1f} {speed:>8} "
                f"{stoi_l:6.3f} {stoi_r:6.3f} {pesq_l:5.2f} {pesq_r:5.2f}"
            )


def main() -> None:
    if shutil.which("espeak-ng") is None:
        sys.exit("espeak-ng is required (apt-get install espeak-ng)")
    started = time.perf_counter()
    run(8000, 30.0)
    run(16000, 12.0)
    print(f"\nspeed = x real time on one core; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
