"""Calibration statistics: how far apart evaluators scored the same call (pure functions).

Every evaluator's answer to a question is turned into its 0-100 score (the
form's scoring rules). Per question: each evaluator's answer side by side,
the mean and the population variance of their scores. The *consensus* is the
designated expert's scores when there is one, else the mean of everybody's.
Per evaluator: their evaluation score against the consensus score, and their
mean absolute deviation from the consensus over the questions both scored —
the number that shows who scores out of line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from callvault.services.qa_form_spec import SCORED
from callvault.services.qa_scoring import question_score


@dataclass(frozen=True)
class Scored:
    """One evaluator's submitted evaluation in the session."""

    evaluator: str
    answers: dict[str, dict[str, Any]]
    score: float


def variance(values: list[float]) -> float | None:
    """Population variance (the evaluators are the whole population of the session)."""
    if not values:
        return None
    mean = math.fsum(values) / len(values)
    return math.fsum((v - mean) ** 2 for v in values) / len(values)


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def calibration_results(
    definition: dict[str, Any], scored: list[Scored], expert: str | None
) -> dict[str, Any]:
    reference = next((s for s in scored if s.evaluator == expert), None)
    per_question: list[dict[str, Any]] = []
    consensus_by_question: dict[str, float | None] = {}
    for section in definition["sections"]:
        for question in section["questions"]:
            if question["kind"] not in SCORED:
                continue
            qid = str(question["id"])
            cells = {
                s.evaluator: (
                    s.answers.get(qid, {}).get("value"),
                    question_score(question, s.answers.get(qid, {}).get("value")),
                )
                for s in scored
            }
            values = [points for _, points in cells.values() if points is not None]
            if reference is not None:
                consensus = cells[reference.evaluator][1]
            else:
                consensus = _mean(values)
            consensus_by_question[qid] = consensus
            per_question.append(
                {
                    "question_id": question["id"],
                    "section_id": section["id"],
                    "text": question["text"],
                    "answers": {name: {"value": v, "score": _r(p)} for name, (v, p) in cells.items()},
                    "mean": _r(_mean(values)),
                    "variance": _r(variance(values)),
                    "consensus": _r(consensus),
                }
            )
    consensus_score = reference.score if reference is not None else _mean([s.score for s in scored])
    per_evaluator = [_evaluator_line(definition, s, consensus_by_question, consensus_score) for s in scored]
    return {
        "consensus": "expert" if reference is not None else "mean",
        "expert": reference.evaluator if reference is not None else None,
        "evaluations": len(scored),
        "score_mean": _r(_mean([s.score for s in scored])),
        "score_variance": _r(variance([s.score for s in scored])),
        "consensus_score": _r(consensus_score),
        "questions": per_question,
        "evaluators": sorted(per_evaluator, key=lambda line: -(line["mean_abs_deviation"] or 0.0)),
    }


def _evaluator_line(
    definition: dict[str, Any],
    scored: Scored,
    consensus: dict[str, float | None],
    consensus_score: float | None,
) -> dict[str, Any]:
    gaps: list[float] = []
    for section in definition["sections"]:
        for question in section["questions"]:
            qid = str(question["id"])
            mine = question_score(question, scored.answers.get(qid, {}).get("value"))
            reference = consensus.get(qid)
            if mine is not None and reference is not None:
                gaps.append(abs(mine - reference))
    return {
        "evaluator": scored.evaluator,
        "score": _r(scored.score),
        "score_deviation": _r(None if consensus_score is None else scored.score - consensus_score),
        "mean_abs_deviation": _r(_mean(gaps)),
    }
