"""Calibration statistics against hand calculations."""

from __future__ import annotations

import pytest

from callvault.services.qa_calibration_stats import Scored, calibration_results, variance
from callvault.services.qa_form_spec import parse_form

FORM = parse_form(
    {
        "name": "c",
        "sections": [
            {
                "title": "All",
                "weight": 100,
                "questions": [
                    {"text": "Greeting", "kind": "yes_no", "weight": 50},
                    {"text": "Tone", "kind": "scale", "weight": 50, "scale_max": 5},
                ],
            }
        ],
    }
)[1]


def scored(name: str, greeting: str, tone: int) -> Scored:
    answers = {"1": {"value": greeting}, "2": {"value": tone}}
    points = (100.0 if greeting == "yes" else 0.0) / 2 + (tone - 1) / 4 * 100 / 2
    return Scored(name, answers, points)


def test_population_variance() -> None:
    assert variance([]) is None
    assert variance([100.0, 0.0]) == 2500.0
    assert variance([50.0, 50.0, 50.0]) == 0.0


def test_variance_per_question_and_deviation_against_the_mean() -> None:
    results = calibration_results(
        FORM, [scored("ann", "yes", 5), scored("ben", "yes", 3), scored("cal", "no", 1)], None
    )
    greeting, tone = results["questions"]
    # Greeting 100, 100, 0: mean 66.67, variance ((33.3)²·2 + (66.7)²)/3 = 2222.22.
    assert greeting["mean"] == pytest.approx(66.67) and greeting["variance"] == pytest.approx(2222.22)
    # Tone 100, 50, 0: mean 50, variance 1666.67.
    assert tone["variance"] == pytest.approx(1666.67)
    assert greeting["answers"]["cal"] == {"value": "no", "score": 0.0}
    by_name = {line["evaluator"]: line for line in results["evaluators"]}
    # cal: |0-66.67| and |0-50| → 58.33; the most out of line comes first.
    assert results["evaluators"][0]["evaluator"] == "cal"
    assert by_name["cal"]["mean_abs_deviation"] == pytest.approx(58.33)
    assert results["consensus"] == "mean" and results["score_mean"] == pytest.approx(58.33)


def test_an_expert_is_the_consensus() -> None:
    results = calibration_results(FORM, [scored("ann", "yes", 5), scored("cal", "no", 1)], "ann")
    assert results["consensus"] == "expert" and results["consensus_score"] == 100.0
    by_name = {line["evaluator"]: line for line in results["evaluators"]}
    assert by_name["ann"]["mean_abs_deviation"] == 0.0
    assert by_name["cal"]["mean_abs_deviation"] == 100.0 and by_name["cal"]["score_deviation"] == -100.0
