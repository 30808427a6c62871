"""Talk metrics from known speech intervals per side."""

from __future__ import annotations

import pytest

from callvault.speech.talk_metrics import (
    SPEECH_LEVEL,
    activity_from_levels,
    activity_from_words,
    intersect,
    longest_monologue,
    merge,
    subtract,
    talk_metrics,
)
from tests.speech.pii_helpers import channel


def test_a_known_talk_pattern_gives_its_metrics() -> None:
    # agent 0-10 and 20-25, customer 9-18 (1 s overtalk), hold 30-40, call 50 s
    metrics = talk_metrics(
        50.0,
        {"agent": [(0.0, 10.0), (20.0, 25.0)], "customer": [(9.0, 18.0)]},
        holds=[(30.0, 40.0)],
        words={"agent": 30, "customer": 18},
    )
    assert metrics.agent_talk_s == pytest.approx(15.0)
    assert metrics.customer_talk_s == pytest.approx(9.0)
    assert metrics.overtalk_s == pytest.approx(1.0)
    assert metrics.hold_s == pytest.approx(10.0)
    # 50 - 10 hold - 23 someone talking
    assert metrics.silence_s == pytest.approx(17.0)
    assert metrics.agent_talk_ratio == pytest.approx(15.0 / 24.0)
    assert metrics.agent_longest_monologue_s == pytest.approx(10.0)
    assert metrics.customer_longest_monologue_s == pytest.approx(9.0)
    assert metrics.agent_wpm == pytest.approx(120.0)
    assert metrics.customer_wpm == pytest.approx(120.0)
    assert metrics.customer_interruptions == 1 and metrics.agent_interruptions == 0


def test_hold_music_on_the_agent_channel_is_not_talk() -> None:
    metrics = talk_metrics(60.0, {"agent": [(0.0, 60.0)], "customer": []}, holds=[(10.0, 50.0)])
    assert metrics.agent_talk_s == pytest.approx(20.0)
    assert metrics.hold_s == pytest.approx(40.0)
    assert metrics.silence_s == pytest.approx(0.0)


def test_a_silent_call_has_no_ratio_and_no_pace() -> None:
    metrics = talk_metrics(30.0, {"agent": [], "customer": []}, words={"agent": 0, "customer": 0})
    assert metrics.agent_talk_ratio is None and metrics.agent_wpm is None
    assert metrics.silence_s == pytest.approx(30.0)
    assert metrics.to_json()["silence_s"] == 30.0


def test_a_monologue_survives_backchannels_and_short_pauses_but_not_a_reply() -> None:
    own = [(0.0, 10.0), (11.0, 20.0), (21.0, 30.0)]
    assert longest_monologue(own, [(12.0, 12.5)]) == pytest.approx(30.0)  # "mm-hm"
    assert longest_monologue(own, [(10.2, 10.9), (20.1, 20.9)]) == pytest.approx(30.0)
    assert longest_monologue(own, [(20.0, 21.0)]) == pytest.approx(20.0)  # a real reply
    assert longest_monologue([(0.0, 5.0), (9.0, 12.0)], []) == pytest.approx(5.0)  # a 4 s pause


def test_levels_become_speech_intervals() -> None:
    loud, quiet = SPEECH_LEVEL + 40, 10
    # 50 ms buckets: 1 s speech, a 0.2 s pause (bridged), 0.5 s speech, 1 s silence, one 50 ms click
    levels = [loud] * 20 + [quiet] * 4 + [loud] * 10 + [quiet] * 20 + [loud] + [quiet] * 5
    assert activity_from_levels(bytes(levels), 0.05) == [(0.0, pytest.approx(1.7))]


def test_word_times_become_speech_intervals() -> None:
    words = channel("hello there | how are you", gap_s=2.0)
    intervals = activity_from_words(words)
    assert len(intervals) == 2 and intervals[0][0] == 0.0


def test_interval_algebra() -> None:
    assert merge([(3.0, 4.0), (0.0, 1.0), (0.5, 2.0)]) == [(0.0, 2.0), (3.0, 4.0)]
    assert intersect([(0.0, 5.0)], [(1.0, 2.0), (4.0, 6.0)]) == [(1.0, 2.0), (4.0, 5.0)]
    assert subtract([(0.0, 10.0)], [(2.0, 3.0), (5.0, 12.0)]) == [(0.0, 2.0), (3.0, 5.0)]
