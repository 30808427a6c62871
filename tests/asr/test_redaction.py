"""A card number read out by the customer: absent from the redacted transcript, silent in the redacted audio.

Real speech (espeak-ng), the real archive, the real recogniser and the real PII
detection; agents get the redacted forms by default, compliance the original.
"""

from __future__ import annotations

import json
import re

import httpx
import numpy as np

from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from tests.api.conftest import auth
from tests.support.audio import read_wav, stereo_wav
from tests.support.people import ADMIN, Staff
from tests.support.phone_line import RATE, place, speak

CARD = "4539148803436467"  # passes Luhn
GROUPS = ("4539", "1488", "0343", "6467")
SPOKEN_DIGITS = ", ".join(("zero one two three four five six seven eight nine".split())[int(d)] for d in CARD)


def card_call() -> tuple[bytes, tuple[float, float], tuple[float, float]]:
    """The agent asks, the customer answers "my card number is" then the digits one by one.
    Returns the WAV, the customer's preface span and the digits' span (seconds)."""
    question = speak("Can I have the card number please?", "en-us")
    preface = speak("Yes, my card number is", "en-gb")
    digits = speak(SPOKEN_DIGITS + ".", "en-gb")
    asked_end = 0.5 + question.size / RATE
    preface_at = asked_end + 0.6
    digits_at = preface_at + preface.size / RATE + 0.3
    length = digits_at + digits.size / RATE + 1.0
    left = place(length, [(0.5, question)])
    right = place(length, [(preface_at, preface), (digits_at, digits)])
    return (
        stereo_wav(left, right, RATE),
        (preface_at, preface_at + preface.size / RATE),
        (digits_at, digits_at + digits.size / RATE),
    )


def said(body: dict[str, object]) -> str:
    """Every text field of a transcript body (segments, words, turns), nothing else."""
    texts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    texts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(body)
    return " ".join(texts)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if samples.size else 0.0


def test_the_card_number_is_gone_from_what_agents_read_and_hear(
    ctx: ServiceContext, client: httpx.Client, staff: Staff
) -> None:
    wav, preface, digits = card_call()
    rid = ctx.importer.import_bytes(ADMIN, wav, ImportRequest(agent="alice"))
    ctx.transcription.transcribe(rid)
    path = f"/api/v1/recordings/{rid}"

    original = client.get(f"{path}/transcript", headers=auth(staff.tokens["carol"])).json()
    assert original["redacted"] is False
    assert CARD in re.sub(r"\D", "", said(original)), said(original)  # the test can fail

    redacted = client.get(f"{path}/transcript", headers=auth(staff.tokens["alice"])).json()
    assert redacted["redacted"] is True
    text = said(redacted)
    assert "[card]" in text
    assert not any(group in re.sub(r"\D", "", text) for group in GROUPS), text
    assert [(r["speaker"], r["kind"]) for r in redacted["redactions"]] == [("customer", "card")]
    assert CARD not in json.dumps(redacted)

    heard = client.get(f"{path}/audio", headers=auth(staff.tokens["alice"]))
    assert heard.status_code == 200 and heard.headers["content-type"] == "audio/wav"
    plain = client.get(f"{path}/audio", params={"format": "wav"}, headers=auth(staff.tokens["carol"]))
    asked = client.get(f"{path}/audio", params={"redacted": 1}, headers=auth(staff.tokens["carol"]))
    assert asked.content == heard.content
    (redacted_pcm, rate), (plain_pcm, _) = read_wav(heard.content), read_wav(plain.content)

    def span(pcm: np.ndarray, channel: int, start: float, end: float) -> np.ndarray:
        return pcm[channel, int(start * rate) : int(end * rate)]

    assert rms(span(plain_pcm, 1, *digits)) > 300  # the digits are loud in the original
    assert rms(span(redacted_pcm, 1, *digits)) < 1.0  # and silent when redacted
    # The customer's preface is still heard, and the agent's channel is untouched.
    assert rms(span(redacted_pcm, 1, preface[0], preface[1] - 0.5)) > 0.5 * rms(
        span(plain_pcm, 1, preface[0], preface[1] - 0.5)
    )
    assert np.array_equal(redacted_pcm[0], plain_pcm[0])
    details = [e.detail for e in ctx.access_log.list(ADMIN, rid) if e.action == "play"]
    assert sum("redacted=1" in (d or "") for d in details) == 2


def test_redacted_audio_before_the_transcript_is_409(
    ctx: ServiceContext, client: httpx.Client, staff: Staff
) -> None:
    wav, _, _ = card_call()
    rid = ctx.importer.import_bytes(ADMIN, wav, ImportRequest(agent="alice"))
    answer = client.get(
        f"/api/v1/recordings/{rid}/audio", params={"redacted": 1}, headers=auth(staff.tokens["carol"])
    )
    assert answer.status_code == 409 and "not transcribed yet" in answer.json()["detail"]
    # Out of scope stays the recording's own 404, redacted or not.
    assert (
        client.get(
            f"/api/v1/recordings/{rid}/audio", params={"redacted": 1}, headers=auth(staff.tokens["bob"])
        ).status_code
        == 404
    )
