"""The evaluation form builder's fields: a form definition to rows of inputs and back.

The builder is a plain HTML form (no script): one row of inputs per section
and per question, named ``s{i}_title`` / ``s{i}_weight`` and ``q{i}_{j}_text``,
``_kind``, ``_weight``, ``_scale_max``, ``_choices``, ``_auto_fail``,
``_allow_na``; hidden ``s{i}_id`` / ``q{i}_{j}_id`` keep the ids of what an
edit carries over (so answers keep meaning the same question in every
version). Blank rows are offered for new sections and questions and ignored
when empty. Choices are written ``Label=points; Label=points``.

What comes back is the API's JSON body (``POST /api/v1/qa/forms``), which
:mod:`callvault.services.qa_form_spec` checks; this module only turns text
into numbers, naming the field when it cannot.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from callvault.errors import InvalidInput
from callvault.services.qa_form_spec import MAX_QUESTIONS, MAX_SECTIONS

BLANK_SECTIONS = 1
BLANK_QUESTIONS = 2
# Every row a form may have, and the blank ones offered with them (a posted row beyond is refused).
SECTION_ROWS = MAX_SECTIONS + 2
QUESTION_ROWS = MAX_QUESTIONS + BLANK_QUESTIONS + 1
KINDS = ("yes_no", "scale", "choice", "comment")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _number(form: FormData, name: str, label: str) -> float | None:
    raw = _text(form, name)
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(f"{label}: a number, e.g. 50") from None


def _choices(raw: str, label: str) -> list[dict[str, Any]]:
    choices = []
    for part in [p.strip() for p in raw.split(";") if p.strip()]:
        name, _, points = part.rpartition("=")
        try:
            choices.append({"label": name.strip(), "points": float(points)})
        except ValueError:
            raise InvalidInput(f"{label}: write choices as Label=points; Label=points") from None
    return choices


def _question(form: FormData, i: int, j: int) -> dict[str, Any] | None:
    prefix, label = f"q{i}_{j}", f"section {i + 1}, question {j + 1}"
    text = _text(form, f"{prefix}_text")
    if not text:
        return None
    kind = _text(form, f"{prefix}_kind") or "yes_no"
    question: dict[str, Any] = {"text": text, "kind": kind}
    if _text(form, f"{prefix}_id").isdigit():
        question["id"] = int(_text(form, f"{prefix}_id"))
    if kind != "comment":
        question["weight"] = _number(form, f"{prefix}_weight", f"{label} weight")
    if kind == "scale":
        scale = _number(form, f"{prefix}_scale_max", f"{label} scale")
        question["scale_max"] = int(scale) if scale is not None and scale.is_integer() else scale
    if kind == "choice":
        question["choices"] = _choices(_text(form, f"{prefix}_choices"), f"{label} choices")
    question["auto_fail"] = form.get(f"{prefix}_auto_fail") == "on"
    question["allow_na"] = form.get(f"{prefix}_allow_na") == "on"
    return question


def read_builder(form: FormData) -> dict[str, Any]:
    """The API body of a posted builder (empty rows left out)."""
    sections = []
    for i in range(SECTION_ROWS):
        questions = [q for j in range(QUESTION_ROWS) if (q := _question(form, i, j)) is not None]
        title = _text(form, f"s{i}_title")
        if not title and not questions:
            continue
        section: dict[str, Any] = {
            "title": title,
            "weight": _number(form, f"s{i}_weight", f"section {i + 1} weight"),
            "questions": questions,
        }
        if _text(form, f"s{i}_id").isdigit():
            section["id"] = int(_text(form, f"s{i}_id"))
        sections.append(section)
    return {"name": _text(form, "name"), "sections": sections}


def rows(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The builder's rows for a definition (or a posted body), with blank rows to add to it."""
    sections = []
    for section in body.get("sections") or []:
        questions = [dict(q, choices_text=_choices_text(q.get("choices"))) for q in section["questions"]]
        questions += [_blank_question() for _ in range(BLANK_QUESTIONS)]
        sections.append(dict(section, questions=questions))
    blank = BLANK_SECTIONS if sections else 2
    sections += [{"title": "", "weight": None, "questions": _blank_questions()} for _ in range(blank)]
    return sections


def _blank_questions() -> list[dict[str, Any]]:
    return [_blank_question() for _ in range(BLANK_QUESTIONS + 1)]


def _blank_question() -> dict[str, Any]:
    return {"text": "", "kind": "yes_no", "weight": None, "auto_fail": False, "allow_na": False}


def _choices_text(choices: list[dict[str, Any]] | None) -> str:
    return "; ".join(f"{c['label']}={c['points']:g}" for c in choices or [])
