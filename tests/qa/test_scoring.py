"""Scoring rules, form checks and the evaluation state machine, as pure functions."""

from __future__ import annotations

import pytest

from callvault.errors import Conflict, InvalidInput
from callvault.services.qa_form_spec import parse_form
from callvault.services.qa_scoring import parse_answers, score, unanswered
from callvault.services.qa_workflow import TRANSITIONS, Move, State, advance


def form_body() -> dict[str, object]:
    return {
        "name": "Service call",
        "sections": [
            {
                "title": "Compliance",
                "weight": 40,
                "questions": [
                    {"text": "Recording disclosure read?", "kind": "yes_no", "weight": 50, "auto_fail": True},
                    {"text": "Identity verified?", "kind": "yes_no", "weight": 50, "allow_na": True},
                ],
            },
            {
                "title": "Soft skills",
                "weight": 60,
                "questions": [
                    {"text": "Empathy", "kind": "scale", "weight": 30, "scale_max": 5},
                    {
                        "text": "Closing",
                        "kind": "choice",
                        "weight": 70,
                        "choices": [
                            {"label": "none", "points": 0},
                            {"label": "partial", "points": 2},
                            {"label": "full", "points": 8},
                        ],
                        "allow_na": True,
                    },
                    {"text": "Anything else?", "kind": "comment"},
                ],
            },
        ],
    }


def answers(**values: object) -> list[dict[str, object]]:
    ids = {"disclosure": 1, "identity": 2, "empathy": 3, "closing": 4, "note": 5}
    return [{"question_id": ids[k], "value": v, "at": 1.5} for k, v in values.items()]


def test_ids_follow_the_order_given() -> None:
    _, definition = parse_form(form_body())
    assert [s["id"] for s in definition["sections"]] == [1, 2]
    assert [q["id"] for s in definition["sections"] for q in s["questions"]] == [1, 2, 3, 4, 5]


def test_weighted_means_match_a_hand_calculation() -> None:
    _, definition = parse_form(form_body())
    given = parse_answers(
        definition, answers(disclosure="yes", identity="no", empathy=4, closing="partial", note="ok"), 10.0
    )
    result = score(definition, given)
    # Compliance: (50·100 + 50·0)/100 = 50. Soft skills: empathy (4-1)/(5-1)·100 = 75,
    # closing 2/8·100 = 25 → (30·75 + 70·25)/100 = 40. Evaluation: (40·50 + 60·40)/100 = 44.
    assert result.sections == {"1": 50.0, "2": pytest.approx(40.0)}
    assert result.score == pytest.approx(44.0)
    assert not result.auto_failed


def test_na_drops_out_of_its_section_and_an_all_na_section_out_of_the_evaluation() -> None:
    _, definition = parse_form(form_body())
    given = parse_answers(definition, answers(disclosure="yes", identity="na", empathy=1, closing="na"), None)
    result = score(definition, given)
    # Compliance: only the disclosure counts → 100; Soft skills: only empathy → 0.
    assert result.sections == {"1": 100.0, "2": 0.0}
    assert result.score == pytest.approx(40.0)
    only_compliance = parse_form(
        {
            "name": "x",
            "sections": [
                form_body()["sections"][0],
                {  # type: ignore[index]
                    "title": "Optional",
                    "weight": 60,
                    "questions": [{"text": "Upsell", "kind": "yes_no", "weight": 100, "allow_na": True}],
                },
            ],
        }
    )[1]
    result = score(
        only_compliance,
        parse_answers(
            only_compliance,
            [
                {"question_id": 1, "value": "yes"},
                {"question_id": 2, "value": "no"},
                {"question_id": 3, "value": "na"},
            ],
            None,
        ),
    )
    assert result.sections["2"] is None
    assert result.score == pytest.approx(50.0)  # the N/A section's weight does not count


def test_an_auto_fail_no_zeroes_the_evaluation_but_keeps_section_scores() -> None:
    _, definition = parse_form(form_body())
    given = parse_answers(
        definition, answers(disclosure="no", identity="yes", empathy=5, closing="full"), None
    )
    result = score(definition, given)
    assert result.auto_failed and result.score == 0.0
    assert result.sections == {"1": 50.0, "2": 100.0}


def test_unanswered_lists_scored_questions_only() -> None:
    _, definition = parse_form(form_body())
    given = parse_answers(definition, answers(disclosure="yes", closing="na"), None)
    assert unanswered(definition, given) == [2, 3]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f["sections"][0].update(weight=30), "section weights add up to 90"),
        (lambda f: f["sections"][1]["questions"][0].update(weight=20), "question weights add up to 90"),
        (lambda f: f["sections"][1]["questions"][0].update(scale_max=1), "scale_max"),
        (lambda f: f["sections"][1]["questions"][0].update(auto_fail=True), "only a yes_no question"),
        (lambda f: f["sections"][1]["questions"][1]["choices"][1].update(label="none"), "distinct"),
        (lambda f: f["sections"][1]["questions"][2].update(weight=5), "comment question"),
        (lambda f: f["sections"][0]["questions"][0].update(kind="essay"), "kind must be one of"),
        (lambda f: f["sections"][0]["questions"][0].update(weight=float("nan")), "weight must be a number"),
        (lambda f: f["sections"][0].update(colour="red"), "unknown field"),
        (lambda f: f["sections"][0]["questions"][0].update(id=7), "not a question of the form being edited"),
        (lambda f: f.update(sections=[]), "sections must be a list"),
    ],
)
def test_bad_forms_are_refused_precisely(change: object, message: str) -> None:
    body = form_body()
    change(body)  # type: ignore[operator]
    with pytest.raises(InvalidInput, match=message):
        parse_form(body)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"question_id": 3, "value": 6}, "from 1 to 5"),
        ({"question_id": 3, "value": True}, "from 1 to 5"),
        ({"question_id": 1, "value": "maybe"}, '"yes", "no"'),
        ({"question_id": 1, "value": "na"}, "does not allow N/A"),
        ({"question_id": 4, "value": "most"}, "one of the choices"),
        ({"question_id": 99, "value": "yes"}, "not a question of this form"),
        ({"question_id": 1, "value": "yes", "at": 12.0}, "past the end of the call"),
        ({"question_id": 1, "value": "yes", "at": -1}, "at must be seconds"),
        ({"question_id": 1, "value": "yes", "score": 100}, "unknown field"),
    ],
)
def test_bad_answers_are_refused_precisely(answer: dict[str, object], message: str) -> None:
    _, definition = parse_form(form_body())
    with pytest.raises(InvalidInput, match=message):
        parse_answers(definition, [answer], 10.0)


def test_a_question_answered_twice_is_refused() -> None:
    _, definition = parse_form(form_body())
    with pytest.raises(InvalidInput, match="answered twice"):
        parse_answers(definition, answers(disclosure="yes") * 2, None)


def test_new_version_keeps_ids_and_numbers_new_questions_after_the_family() -> None:
    _, first = parse_form(form_body())
    body = form_body()
    sections = body["sections"]
    sections[0]["id"] = 1  # type: ignore[index]
    for i, question in enumerate(sections[0]["questions"], 1):  # type: ignore[index]
        question["id"] = i
    sections[1]["questions"][0]["text"] = "Empathy shown"  # type: ignore[index]
    _, second = parse_form(body, previous=first)
    assert [q["id"] for q in second["sections"][0]["questions"]] == [1, 2]
    assert [q["id"] for q in second["sections"][1]["questions"]] == [6, 7, 8]
    assert second["sections"][1]["id"] == 3


def test_the_state_machine_allows_exactly_its_moves() -> None:
    path = [Move.SUBMIT, Move.DISPUTE, Move.REVIEW, Move.ACKNOWLEDGE]
    state = State.DRAFT
    for move in path:
        state = advance(state, move)
    assert state is State.ACKNOWLEDGED
    for state in State:
        for move in Move:
            if (state, move) in TRANSITIONS:
                assert advance(state, move) is TRANSITIONS[(state, move)]
            else:
                with pytest.raises(Conflict, match=f"cannot {move.value}"):
                    advance(state, move)


def test_disputing_twice_says_so() -> None:
    with pytest.raises(Conflict, match="already disputed"):
        advance(State.DISPUTED, Move.DISPUTE)
    with pytest.raises(Conflict, match="acknowledged evaluation cannot be disputed"):
        advance(State.ACKNOWLEDGED, Move.DISPUTE)
