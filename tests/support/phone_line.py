"""A telephone line for test audio: spoken sentences, codecs, level changes and line noise.

Speech comes from espeak-ng (installed by ``scripts/test``), resampled to
16 kHz. Encoding is independent of callvault: G.711, G.722 and Opus through
the test SRC's own encoders (:mod:`tests.support.test_src`), G.729 through the
reference-grade bcg729 library (``libbcg729-0``) called with ctypes, since
FFmpeg has no G.729 encoder. Decoding goes through callvault's payload
decoders, the ones the recorder's renderer uses, at the rate it renders
(8 kHz narrowband, 16 kHz for G.722 and Opus).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import io
import shutil
import subprocess
import wave

import numpy as np
import numpy.typing as npt
import scipy.signal

from callvault.media.mixing import resample
from callvault.media.payload_codecs import create_decoder
from tests.support.test_src import frames_for

Pcm = npt.NDArray[np.int16]
CODECS = ("PCMU", "PCMA", "G722", "G729", "OPUS")
RATE = 16000  # the rate speech is made at and impairments are applied at


@functools.lru_cache(maxsize=128)
def _spoken(text: str, voice: str, speed: int, pitch: int) -> bytes:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise RuntimeError("espeak-ng is not installed (scripts/test installs it: apt-get install espeak-ng)")
    command = [espeak, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text]
    return subprocess.run(command, capture_output=True, check=True, timeout=30).stdout


def speak(text: str, voice: str = "en-us", speed: int = 160, pitch: int = 50, peak_dbfs: float = -6.0) -> Pcm:
    """``text`` spoken by espeak-ng, 16 kHz, its peak at ``peak_dbfs``."""
    with wave.open(io.BytesIO(_spoken(text, voice, speed, pitch))) as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.int16)
    return to_peak(resample(pcm, rate, RATE), peak_dbfs)


def to_peak(pcm: Pcm, peak_dbfs: float) -> Pcm:
    peak = max(1, int(np.abs(pcm.astype(np.int32)).max()))
    return gain(pcm, peak_dbfs - 20 * np.log10(peak / 32768))


def gain(pcm: Pcm, db: float) -> Pcm:
    """``pcm`` louder by ``db`` (clipped at full scale, as a hot line clips)."""
    return np.clip(np.round(pcm.astype(np.float64) * 10 ** (db / 20)), -32768, 32767).astype(np.int16)


def place(length: float, parts: list[tuple[float, Pcm]]) -> Pcm:
    """``length`` seconds of silence with each ``(start seconds, pcm)`` mixed in."""
    out = np.zeros(round(length * RATE), dtype=np.float64)
    for start, pcm in parts:
        first = round(start * RATE)
        count = max(0, min(pcm.size, out.size - first))
        out[first : first + count] += pcm[:count]
    return np.clip(out, -32768, 32767).astype(np.int16)


def line_noise(pcm: Pcm, snr_db: float, reference: Pcm, seed: int) -> Pcm:
    """``pcm`` with hiss (200-3600 Hz) and 50 Hz mains hum added, ``snr_db`` under ``reference``'s level."""
    rng = np.random.default_rng(seed)
    hiss = scipy.signal.sosfilt(
        scipy.signal.butter(2, [200, 3600], btype="band", fs=RATE, output="sos"),
        rng.standard_normal(pcm.size),
    )
    t = np.arange(pcm.size) / RATE
    noise = (
        hiss / np.sqrt(np.mean(hiss**2))
        + 0.3 * np.sin(2 * np.pi * 50 * t)
        + 0.1 * np.sin(2 * np.pi * 150 * t)
    )
    loud = reference.astype(np.float64)
    level = np.sqrt(np.mean(loud[np.abs(loud) > 0] ** 2)) / 10 ** (snr_db / 20)
    noisy = pcm.astype(np.float64) + noise / np.sqrt(np.mean(noise**2)) * level
    return np.clip(np.round(noisy), -32768, 32767).astype(np.int16)


def through(codec: str, pcm16k: Pcm) -> tuple[Pcm, int]:
    """``pcm16k`` encoded with ``codec`` in 20 ms packets and decoded as the recorder renders it."""
    if codec in ("PCMU", "PCMA"):
        return create_decoder(codec, 8000).decode_batch(frames_for(codec, resample(pcm16k, RATE, 8000))), 8000
    if codec == "G729":
        return create_decoder("G729", 8000).decode_batch(g729_encode(resample(pcm16k, RATE, 8000))), 8000
    if codec == "G722":
        return create_decoder("G722", 8000).decode_batch(frames_for("G722", pcm16k)), 16000
    if codec == "OPUS":
        decoded = create_decoder("OPUS", 48000, 2).decode_batch(
            frames_for("OPUS", resample(pcm16k, RATE, 48000))
        )
        return resample(decoded, 48000, 16000), 16000
    raise ValueError(f"no test line for codec {codec!r}")


@functools.lru_cache(maxsize=1)
def _bcg729() -> ctypes.CDLL:
    name = ctypes.util.find_library("bcg729") or "libbcg729.so.0"
    try:
        library = ctypes.CDLL(name)
    except OSError as exc:
        raise RuntimeError("libbcg729 is not installed (scripts/test installs libbcg729-0)") from exc
    library.initBcg729EncoderChannel.restype = ctypes.c_void_p
    library.initBcg729EncoderChannel.argtypes = [ctypes.c_uint8]
    library.closeBcg729EncoderChannel.argtypes = [ctypes.c_void_p]
    library.bcg729Encoder.argtypes = [
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int16),
        ctypes.POINTER(ctypes.c_uint8),
        ctypes.POINTER(ctypes.c_uint8),
    ]
    return library


def g729_encode(pcm8k: Pcm) -> list[bytes]:
    """20 ms G.729 payloads (two 10-byte frames each) of 8 kHz audio; no VAD, as trunks usually run it."""
    library = _bcg729()
    context = library.initBcg729EncoderChannel(0)
    frame = (ctypes.c_uint8 * 10)()
    length = ctypes.c_uint8()
    samples = np.concatenate([pcm8k, np.zeros((-pcm8k.size) % 160, dtype=np.int16)])
    payloads = []
    try:
        for start in range(0, samples.size, 160):
            payload = b""
            for half in (start, start + 80):
                chunk = np.ascontiguousarray(samples[half : half + 80])
                pointer = chunk.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
                library.bcg729Encoder(context, pointer, frame, ctypes.byref(length))
                payload += bytes(frame[: length.value])
            payloads.append(payload)
    finally:
        library.closeBcg729EncoderChannel(context)
    return payloads


ANNOUNCEMENT = "This call may be recorded for quality and training purposes."
# Another announcement of the same kind and length: must not pass for the one above.
SIMILAR_ANNOUNCEMENT = "This call will be monitored for training and quality reasons."
SENTENCES = (
    "Hello, thank you for calling, how can I help you today?",
    "I would like to check the status of my order please.",
    "Sure, can I have your account number?",
    "Yes, it is four five six seven eight nine.",
    "Thank you for waiting, I found your order.",
    "Your call is important to us, please stay on the line.",
    "Good morning, you are speaking with Anna from customer service.",
    "I moved last month, so the address on file is wrong.",
)
VOICES = ("en-us", "en-gb", "en-us+f2", "en-gb+m3", "en-us+f4")


def conversation(seconds: float, seed: int) -> Pcm:
    """One side of a conversation at 16 kHz: sentences in several voices and speeds, with pauses."""
    rng = np.random.default_rng(seed)
    parts: list[tuple[float, Pcm]] = []
    at = float(rng.uniform(0.3, 1.5))
    while at < seconds:
        sentence = speak(
            SENTENCES[int(rng.integers(len(SENTENCES)))],
            VOICES[int(rng.integers(len(VOICES)))],
            int(rng.integers(140, 190)),
            peak_dbfs=float(rng.uniform(-14.0, -4.0)),
        )
        parts.append((at, sentence))
        at += sentence.size / RATE + float(rng.uniform(0.3, 2.0))
    return place(seconds, parts)
