"""A call with known sentences on each side, transcribed by the real recogniser, then analysed
by the job its transcript enqueued: the talk pattern, the categories, no PII."""

from __future__ import annotations

import numpy as np
import pytest

from callvault.runtime.jobs.handlers import job_handlers
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from tests.analytics.test_call_insights import Unhurried
from tests.support.people import ADMIN
from tests.support.phone_line import RATE
from tests.support.speech_calls import spoken_call

AGENT_LINES = (
    "Hello, this call is recorded for quality and training, how can I help you today?",
    "I am sorry to hear that. I can arrange a refund for that order right away.",
)
CUSTOMER_LINES = (
    "My kettle broke after two days and I want to cancel my account.",
    "Thank you so much, I am very happy with that.",
)
# espeak-ng pads each line with a little silence; the archive's silence gate and the 50 ms
# level frames add their own edges. Half a second is the bar the issue sets.
TOLERANCE_S = 0.5


def voiced(pcm: np.ndarray, spans: tuple[tuple[float, float], ...]) -> list[tuple[float, float]]:
    """Each line from its first to its last sample above -40 dBFS (espeak-ng pads lines with silence)."""
    out = []
    for start, end in spans:
        part = np.abs(pcm[int(start * RATE) : int(end * RATE)].astype(np.int32))
        loud = np.flatnonzero(part > 32768 * 10 ** (-40 / 20))
        out.append((start + loud[0] / RATE, start + (loud[-1] + 1) / RATE))
    return out


def test_metrics_categories_and_adherence_of_a_spoken_call(ctx: ServiceContext) -> None:
    for body in (
        {"name": "cancellation", "speaker": "customer", "phrases": ["cancel my account"]},
        {"name": "disclosure", "speaker": "agent", "phrases": ["this call is recorded"], "within_s": 10},
        {"name": "refund", "speaker": "any", "phrases": ["refund"]},
    ):
        ctx.phrase_categories.create(ADMIN, body)
    call = spoken_call(AGENT_LINES, CUSTOMER_LINES)
    rid = ctx.importer.import_bytes(ADMIN, call.wav(), ImportRequest())
    assert ctx.transcription.transcribe(rid).stored
    (job,) = ctx.jobs.list(kind="analyse")
    job_handlers(ctx)["analyse"](job.payload, Unhurried())

    analytics = ctx.search.get(ADMIN, rid)["analytics"]
    metrics = analytics["metrics"]
    agent_voiced, customer_voiced = (
        voiced(call.left, call.agent_spans),
        voiced(call.right, call.customer_spans),
    )
    expected_agent = sum(end - start for start, end in agent_voiced)
    expected_customer = sum(end - start for start, end in customer_voiced)
    print(
        f"agent talk {metrics['agent_talk_s']:.2f} s (spoken {expected_agent:.2f}), "
        f"customer {metrics['customer_talk_s']:.2f} s (spoken {expected_customer:.2f}), "
        f"overtalk {metrics['overtalk_s']:.2f} s, wpm {metrics['agent_wpm']}, {metrics['customer_wpm']}"
    )
    assert analytics["source"] == "audio"
    assert metrics["agent_talk_s"] == pytest.approx(expected_agent, abs=TOLERANCE_S)
    assert metrics["customer_talk_s"] == pytest.approx(expected_customer, abs=TOLERANCE_S)
    assert metrics["overtalk_s"] <= TOLERANCE_S  # they take turns
    longest_agent = max(end - start for start, end in agent_voiced)
    assert metrics["agent_longest_monologue_s"] == pytest.approx(longest_agent, abs=TOLERANCE_S)
    assert 80 <= metrics["agent_wpm"] <= 260  # espeak-ng speaks at about 175 words a minute
    assert analytics["categories"] == ["cancellation", "disclosure", "refund"]
    assert {a["category"]: a["met"] for a in analytics["adherence"]} == {"disclosure": True}
    customer_scores = [score for side, _, _, score in analytics["sentiment_timeline"] if side == "customer"]
    # angry first, pleased at the end (the recogniser may mishear a word of either)
    assert customer_scores[0] < 0 < customer_scores[-1]
