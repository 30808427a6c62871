"""Answers checked against a form, and the score they give (pure functions, no I/O).

The scoring rules (README, "Quality management"):

- yes/no: yes 100, no 0; k on a 1..N scale: (k-1)/(N-1)·100; a choice: its
  points as a share of the best choice's points, ·100; comments are not scored;
- an N/A answer (allowed per question) drops the question out: the weights of
  the others in its section are what the mean is taken over; a section whose
  questions are all N/A drops out of the evaluation the same way;
- a section's score is the weighted mean of its questions' scores, the
  evaluation's the weighted mean of its sections' scores;
- any ``auto_fail`` question answered "no" makes the evaluation 0 (the section
  scores are still reported, so the agent sees what was right);
- an evaluation whose every scored question is N/A has no score (None).

An answer is ``{"value", "at", "comment"}``: ``at`` pins it to a moment of the
call (seconds from its start, within the recording's length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from callvault.errors import InvalidInput
from callvault.services.qa_form_spec import SCORED, questions

NA = "na"
MAX_COMMENT = 4000
_ANSWER_FIELDS = {"question_id", "value", "at", "comment"}


@dataclass(frozen=True)
class Score:
    score: float | None
    auto_failed: bool
    sections: dict[str, float | None]  # section id (as text, like JSON keys) -> score
    questions: dict[str, float | None]  # question id -> score (None: N/A or a comment)


def parse_answers(definition: dict[str, Any], raw: Any, duration: float | None) -> dict[str, dict[str, Any]]:
    """Answers of a request (``[{"question_id", "value", "at", "comment"}]``) keyed by question id,
    each checked against its question; ``duration`` bounds ``at`` (None: unknown, any >= 0)."""
    if not isinstance(raw, list):
        raise InvalidInput('answers must be a list of {"question_id", "value", "at"} objects')
    by_id = questions(definition)
    parsed: dict[str, dict[str, Any]] = {}
    for i, answer in enumerate(raw, 1):
        where = f"answers[{i}]"
        if not isinstance(answer, dict):
            raise InvalidInput(f"{where} must be an object")
        unknown = sorted(set(answer) - _ANSWER_FIELDS)
        if unknown:
            raise InvalidInput(f"{where}: unknown field(s) {', '.join(unknown)}")
        question_id = answer.get("question_id")
        if isinstance(question_id, bool) or not isinstance(question_id, int) or question_id not in by_id:
            raise InvalidInput(f"{where}.question_id: {question_id!r} is not a question of this form")
        if str(question_id) in parsed:
            raise InvalidInput(f"{where}: question {question_id} is answered twice")
        question = by_id[question_id]
        parsed[str(question_id)] = {
            "value": _value(question, answer.get("value"), where),
            "at": _moment(answer.get("at"), duration, where),
            "comment": _comment(answer.get("comment"), where),
        }
    return parsed


def unanswered(definition: dict[str, Any], answers: dict[str, dict[str, Any]]) -> list[int]:
    """Scored questions without an answer (N/A counts as an answer)."""
    return [
        qid
        for qid, q in questions(definition).items()
        if q["kind"] in SCORED and answers.get(str(qid), {}).get("value") is None
    ]


def score(definition: dict[str, Any], answers: dict[str, dict[str, Any]]) -> Score:
    """The evaluation's score by the rules above; unanswered questions count as N/A."""
    question_scores: dict[str, float | None] = {}
    section_scores: dict[str, float | None] = {}
    auto_failed = False
    weighted: list[tuple[float, float]] = []
    for section in definition["sections"]:
        parts: list[tuple[float, float]] = []
        for question in section["questions"]:
            value = answers.get(str(question["id"]), {}).get("value")
            points = question_score(question, value)
            question_scores[str(question["id"])] = points
            if question["auto_fail"] and value == "no":
                auto_failed = True
            if points is not None:
                parts.append((question["weight"], points))
        section_score = _weighted_mean(parts)
        section_scores[str(section["id"])] = section_score
        if section_score is not None:
            weighted.append((section["weight"], section_score))
    overall = _weighted_mean(weighted)
    if auto_failed:
        overall = 0.0
    return Score(overall, auto_failed, section_scores, question_scores)


def question_score(question: dict[str, Any], value: Any) -> float | None:
    """0-100 for an answer; None for N/A, no answer, or a comment question."""
    kind = question["kind"]
    if value is None or value == NA or kind not in SCORED:
        return None
    if kind == "yes_no":
        return 100.0 if value == "yes" else 0.0
    if kind == "scale":
        return (int(value) - 1) / (int(question["scale_max"]) - 1) * 100.0
    best = max(float(c["points"]) for c in question["choices"])
    points = next(float(c["points"]) for c in question["choices"] if c["label"] == value)
    return points / best * 100.0


def _weighted_mean(parts: list[tuple[float, float]]) -> float | None:
    total = math.fsum(w for w, _ in parts)
    if not parts or total <= 0:
        return None
    return math.fsum(w * s for w, s in parts) / total


def _value(question: dict[str, Any], value: Any, where: str) -> Any:
    kind = question["kind"]
    if value is None:
        return None  # not answered yet (a draft)
    if value == NA:
        if not question["allow_na"]:
            raise InvalidInput(f"{where}: question {question['id']} does not allow N/A")
        return NA
    if kind == "yes_no":
        if value not in ("yes", "no"):
            raise InvalidInput(f'{where}.value must be "yes", "no" or "na" for a yes/no question')
        return value
    if kind == "scale":
        top = question["scale_max"]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            raise InvalidInput(f"{where}.value must be a whole number from 1 to {top}")
        return value
    if kind == "choice":
        labels = [c["label"] for c in question["choices"]]
        if value not in labels:
            raise InvalidInput(f"{where}.value must be one of the choices: {', '.join(labels)}")
        return value
    if not isinstance(value, str) or len(value) > MAX_COMMENT:
        raise InvalidInput(f"{where}.value of a comment question is text of at most {MAX_COMMENT} characters")
    return value


def _moment(at: Any, duration: float | None, where: str) -> float | None:
    if at is None:
        return None
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) or at < 0:
        raise InvalidInput(f"{where}.at must be seconds into the call (a number >= 0)")
    if duration is not None and at > duration + 0.5:
        raise InvalidInput(f"{where}.at: {at:g} s is past the end of the call ({duration:.1f} s)")
    return float(at)


def _comment(comment: Any, where: str) -> str | None:
    if comment is None:
        return None
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise InvalidInput(f"{where}.comment must be text of at most {MAX_COMMENT} characters")
    return comment
