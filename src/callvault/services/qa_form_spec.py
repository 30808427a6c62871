"""Evaluation forms as submitted by a QA lead: checked, and given section and question ids.

A form is sections of questions. Every number is checked here, once, so the
scorer (:mod:`callvault.services.qa_scoring`) can trust a definition:

- section weights add up to 100, and within a section the weights of its
  scored questions add up to 100 (a ``comment`` question is not scored and
  has no weight);
- ``scale`` questions run 1..``scale_max`` (2-10); ``choice`` questions have
  2-20 choices with distinct labels and points >= 0, the best above 0;
- only a ``yes_no`` question can be ``auto_fail`` (a "no" zeroes the evaluation).

Ids are unique within a form's family (all its versions): a new version keeps
the id of every question it carries over (named by ``id`` in the request) and
numbers new ones after the highest id the family ever used, so an answer's
question id means the same question in every version.
"""

from __future__ import annotations

import math
from typing import Any

from callvault.errors import InvalidInput

KINDS = ("yes_no", "scale", "choice", "comment")
SCORED = frozenset({"yes_no", "scale", "choice"})
MAX_SECTIONS = 50
MAX_QUESTIONS = 100  # per section
MAX_SCALE = 10
MAX_CHOICES = 20
MAX_TEXT = 1000
WEIGHT_TOLERANCE = 0.01
_FORM_FIELDS = {"name", "sections"}
_SECTION_FIELDS = {"id", "title", "weight", "questions"}
_QUESTION_FIELDS = {"id", "text", "kind", "weight", "scale_max", "choices", "auto_fail", "allow_na"}


def parse_form(body: Any, previous: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    """``(name, definition)`` of a form request; ``previous`` is the definition it edits (its ids
    may be reused, others are refused) or None for a new form."""
    if not isinstance(body, dict):
        raise InvalidInput("a form is a JSON object with name and sections")
    _no_unknown(body, _FORM_FIELDS, "form")
    name = _text(body.get("name"), "name", 200)
    sections = body.get("sections")
    if not isinstance(sections, list) or not 1 <= len(sections) <= MAX_SECTIONS:
        raise InvalidInput(f"sections must be a list of 1-{MAX_SECTIONS} sections")
    ids = _Ids(previous)
    parsed = [_section(s, i, ids) for i, s in enumerate(sections, 1)]
    _adds_up([s["weight"] for s in parsed], "section weights")
    return name, {"sections": parsed}


def questions(definition: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Every question of a definition by id."""
    return {q["id"]: q for s in definition["sections"] for q in s["questions"]}


def section_ids(definition: dict[str, Any]) -> set[int]:
    return {int(s["id"]) for s in definition["sections"]}


class _Ids:
    """Section and question ids: reuse the previous version's, number new ones after them."""

    def __init__(self, previous: dict[str, Any] | None) -> None:
        self.old_sections = section_ids(previous) if previous else set()
        self.old_questions = set(questions(previous)) if previous else set()
        self.next_section = max(self.old_sections, default=0) + 1
        self.next_question = max(self.old_questions, default=0) + 1
        self.used_sections: set[int] = set()
        self.used_questions: set[int] = set()

    def section(self, given: Any, where: str) -> int:
        return self._take(given, where, self.old_sections, self.used_sections, "section")

    def question(self, given: Any, where: str) -> int:
        return self._take(given, where, self.old_questions, self.used_questions, "question")

    def _take(self, given: Any, where: str, known: set[int], used: set[int], what: str) -> int:
        if given is None:
            if what == "section":
                value, self.next_section = self.next_section, self.next_section + 1
            else:
                value, self.next_question = self.next_question, self.next_question + 1
        elif isinstance(given, int) and not isinstance(given, bool) and given in known:
            value = given
        else:
            raise InvalidInput(f"{where}.id: {given!r} is not a {what} of the form being edited")
        if value in used:
            raise InvalidInput(f"{where}.id: {what} {value} appears twice")
        used.add(value)
        return value


def _section(raw: Any, index: int, ids: _Ids) -> dict[str, Any]:
    where = f"sections[{index}]"
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object with title, weight and questions")
    _no_unknown(raw, _SECTION_FIELDS, where)
    section_id = ids.section(raw.get("id"), where)
    title = _text(raw.get("title"), f"{where}.title", 200)
    weight = _weight(raw.get("weight"), f"{where}.weight")
    items = raw.get("questions")
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_QUESTIONS:
        raise InvalidInput(f"{where}.questions must be a list of 1-{MAX_QUESTIONS} questions")
    parsed = [_question(q, f"{where}.questions[{i}]", ids) for i, q in enumerate(items, 1)]
    scored = [q["weight"] for q in parsed if q["kind"] in SCORED]
    if not scored:
        raise InvalidInput(f"{where} has no scored question (yes_no, scale or choice)")
    _adds_up(scored, f"{where}: question weights")
    return {"id": section_id, "title": title, "weight": weight, "questions": parsed}


def _question(raw: Any, where: str, ids: _Ids) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be an object with text and kind")
    _no_unknown(raw, _QUESTION_FIELDS, where)
    question_id = ids.question(raw.get("id"), where)
    text = _text(raw.get("text"), f"{where}.text", MAX_TEXT)
    kind = raw.get("kind")
    if kind not in KINDS:
        raise InvalidInput(f"{where}.kind must be one of {', '.join(KINDS)}")
    auto_fail = _flag(raw.get("auto_fail"), f"{where}.auto_fail")
    allow_na = _flag(raw.get("allow_na"), f"{where}.allow_na")
    if auto_fail and kind != "yes_no":
        raise InvalidInput(f"{where}: only a yes_no question can be auto_fail")
    question: dict[str, Any] = {
        "id": question_id,
        "text": text,
        "kind": kind,
        "weight": 0.0,
        "auto_fail": auto_fail,
        "allow_na": allow_na,
    }
    if kind == "comment":
        if raw.get("weight") not in (None, 0):
            raise InvalidInput(f"{where}: a comment question is not scored and has no weight")
    else:
        question["weight"] = _weight(raw.get("weight"), f"{where}.weight")
    _kind_fields(raw, kind, where, question)
    return question


def _kind_fields(raw: dict[str, Any], kind: str, where: str, question: dict[str, Any]) -> None:
    scale_max, choices = raw.get("scale_max"), raw.get("choices")
    if kind != "scale" and scale_max is not None:
        raise InvalidInput(f"{where}: scale_max belongs to scale questions only")
    if kind != "choice" and choices is not None:
        raise InvalidInput(f"{where}: choices belong to choice questions only")
    if kind == "scale":
        if not isinstance(scale_max, int) or isinstance(scale_max, bool) or not 2 <= scale_max <= MAX_SCALE:
            raise InvalidInput(f"{where}.scale_max must be a whole number from 2 to {MAX_SCALE}")
        question["scale_max"] = scale_max
    if kind == "choice":
        question["choices"] = _choices(choices, where)


def _choices(raw: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_CHOICES:
        raise InvalidInput(f"{where}.choices must be a list of 2-{MAX_CHOICES} {{label, points}} objects")
    parsed: list[dict[str, Any]] = []
    for i, choice in enumerate(raw, 1):
        at = f"{where}.choices[{i}]"
        if not isinstance(choice, dict) or set(choice) != {"label", "points"}:
            raise InvalidInput(f"{at} must be an object with exactly label and points")
        points = choice["points"]
        if not _finite(points) or points < 0 or points > 1_000_000:
            raise InvalidInput(f"{at}.points must be a number from 0 to 1000000")
        parsed.append({"label": _text(choice["label"], f"{at}.label", 200), "points": float(points)})
    labels = [c["label"] for c in parsed]
    if len(set(labels)) != len(labels):
        raise InvalidInput(f"{where}.choices: labels must be distinct")
    if max(c["points"] for c in parsed) <= 0:
        raise InvalidInput(f"{where}.choices: the best choice must be worth more than 0 points")
    return parsed


def _adds_up(weights: list[float], what: str) -> None:
    total = math.fsum(weights)
    if abs(total - 100.0) > WEIGHT_TOLERANCE:
        raise InvalidInput(f"{what} add up to {total:g}; they must add up to 100")


def _weight(value: Any, where: str) -> float:
    if not _finite(value) or not 0 < value <= 100:
        raise InvalidInput(f"{where} must be a number above 0 and at most 100")
    return float(value)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _flag(value: Any, where: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidInput(f"{where} must be true or false")
    return value


def _text(value: Any, where: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise InvalidInput(f"{where} must be a non-empty string of at most {limit} characters")
    return value.strip()


def _no_unknown(raw: dict[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise InvalidInput(
            f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
