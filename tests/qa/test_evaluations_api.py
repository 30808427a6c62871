"""Forms, evaluations, disputes and calibration through the API, as several roles."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from callvault.db.models import AccessEvent, Alert
from callvault.db.qa_models import QaEvaluation
from callvault.services.call_record import CallRecord, ParticipantRecord
from callvault.services.context import ServiceContext
from tests.qa.conftest import FORM, Api
from tests.support.vault_calls import seal_call

ALICE = "sip:1001@pbx.example"
BOB = "sip:1002@pbx.example"


def answers(
    disclosure: str, identity: str, empathy: int, closing: str, at: float = 1.0
) -> list[dict[str, object]]:
    return [
        {"question_id": 1, "value": disclosure, "at": at},
        {"question_id": 2, "value": identity, "at": at},
        {"question_id": 3, "value": empathy, "at": 2.5},
        {"question_id": 4, "value": closing},
        {"question_id": 5, "value": "kept calm", "comment": "good recovery"},
    ]


def test_form_evaluation_dispute_and_history(ctx: ServiceContext, qa_api: Api) -> None:
    sam, rita, alice, dana, bob, quinn = (
        qa_api.as_(n) for n in ("sam", "rita", "alice", "dana", "bob", "quinn")
    )
    assert alice("POST", "/qa/forms", json=FORM).status_code == 403
    bad = copy.deepcopy(FORM)
    bad["sections"][0]["weight"] = 50
    refused = sam("POST", "/qa/forms", json=bad)
    assert refused.status_code == 400 and "add up to 110" in refused.json()["detail"]
    created = sam("POST", "/qa/forms", json=FORM)
    assert created.status_code == 201, created.text
    form = created.json()
    assert [q["id"] for s in form["sections"] for q in s["questions"]] == [1, 2, 3, 4, 5]
    assert form["sections"][0]["questions"][0]["auto_fail"] is True

    recording = seal_call(ctx, agent_aor=ALICE)  # 3.0 s long, alice (red)
    blue_call = seal_call(ctx, agent_aor=BOB)
    body = {"recording_id": recording, "form_id": form["id"]}
    assert quinn("POST", "/qa/evaluations", json=body).status_code == 404  # blue evaluator, red call
    assert alice("POST", "/qa/evaluations", json=body).status_code == 403  # agents do not evaluate
    assert rita("POST", "/qa/evaluations", json={**body, "recording_id": blue_call}).status_code == 404
    started = rita("POST", "/qa/evaluations", json=body)
    assert started.status_code == 201, started.text
    evaluation_id = started.json()["id"]
    assert sam("POST", "/qa/evaluations", json=body).status_code == 409  # already being evaluated

    # Hostile answers change nothing.
    late = rita(
        "PUT",
        f"/qa/evaluations/{evaluation_id}",
        json={"answers": answers("yes", "no", 4, "partial", at=9.0)},
    )
    assert late.status_code == 400 and "past the end of the call" in late.json()["detail"]
    off_scale = rita(
        "PUT", f"/qa/evaluations/{evaluation_id}", json={"answers": answers("yes", "no", 6, "partial")}
    )
    assert off_scale.status_code == 400 and "from 1 to 5" in off_scale.json()["detail"]
    assert rita("GET", f"/qa/evaluations/{evaluation_id}").json()["answers"] == []
    assert rita("POST", f"/qa/evaluations/{evaluation_id}/submit").status_code == 400  # unanswered
    assert alice("GET", f"/qa/evaluations/{evaluation_id}").status_code == 404  # drafts are not shown

    saved = rita(
        "PUT", f"/qa/evaluations/{evaluation_id}", json={"answers": answers("yes", "no", 4, "partial")}
    )
    assert saved.status_code == 200, saved.text
    assert sam("PUT", f"/qa/evaluations/{evaluation_id}", json={"answers": []}).status_code == 403
    submitted = rita("POST", f"/qa/evaluations/{evaluation_id}/submit")
    assert submitted.status_code == 200, submitted.text
    # Compliance (60·100 + 40·0)/100 = 60; soft skills: empathy 75, closing 1/4 → 25: 50.
    # Evaluation: (40·60 + 60·50)/100 = 54.
    result = submitted.json()
    assert result["score"] == 54.0 and result["section_scores"] == {"1": 60.0, "2": 50.0}
    assert result["state"] == "submitted" and not result["auto_failed"]
    assert [a["at"] for a in result["answers"]][:3] == [1.0, 1.0, 2.5]
    assert rita("POST", f"/qa/evaluations/{evaluation_id}/submit").status_code == 409
    assert rita("PUT", f"/qa/evaluations/{evaluation_id}", json={"answers": []}).status_code == 409

    # The agent sees it, no other agent does.
    mine = alice("GET", f"/qa/evaluations/{evaluation_id}")
    assert mine.status_code == 200 and mine.json()["score"] == 54.0
    assert dana("GET", f"/qa/evaluations/{evaluation_id}").status_code == 404
    assert bob("GET", f"/qa/evaluations/{evaluation_id}").status_code == 404
    assert [e["id"] for e in alice("GET", "/qa/evaluations").json()["items"]] == [evaluation_id]
    assert dana("GET", "/qa/evaluations").json()["items"] == []

    # Dispute once; the evaluator may not review; the supervisor changes the score.
    assert dana("POST", f"/qa/evaluations/{evaluation_id}/dispute", json={"reason": "x"}).status_code == 404
    assert alice("POST", f"/qa/evaluations/{evaluation_id}/dispute", json={"reason": " "}).status_code == 400
    disputed = alice(
        "POST", f"/qa/evaluations/{evaluation_id}/dispute", json={"reason": "I did verify the caller"}
    )
    assert disputed.status_code == 201 and disputed.json()["state"] == "disputed"
    again = alice("POST", f"/qa/evaluations/{evaluation_id}/dispute", json={"reason": "again"})
    assert again.status_code == 409 and "already disputed" in again.json()["detail"]
    change = {
        "outcome": "change",
        "answers": answers("yes", "yes", 4, "partial"),
        "note": "identity was verified at 0:01",
    }
    assert rita("POST", f"/qa/evaluations/{evaluation_id}/review", json=change).status_code == 403
    assert alice("POST", f"/qa/evaluations/{evaluation_id}/review", json=change).status_code == 403
    reviewed = sam("POST", f"/qa/evaluations/{evaluation_id}/review", json=change)
    assert reviewed.status_code == 200, reviewed.text
    # Compliance now 100 → (40·100 + 60·50)/100 = 70.
    view = alice("GET", f"/qa/evaluations/{evaluation_id}").json()
    assert view["score"] == 70.0 and view["state"] == "reviewed"
    assert [(h["reason"], h["score"], h["by"]) for h in view["history"]] == [
        ("submitted", 54.0, "rita"),
        ("dispute_changed", 70.0, "sam"),
    ]
    assert view["dispute"]["score_before"] == 54.0 and view["dispute"]["score_after"] == 70.0
    assert alice("POST", f"/qa/evaluations/{evaluation_id}/acknowledge").json()["state"] == "acknowledged"
    assert sam("POST", f"/qa/evaluations/{evaluation_id}/review", json=change).status_code == 409

    # Every step is in the audit trail under the call's recording id.
    with ctx.catalog.read() as session:
        actions = [
            (e.username, e.action)
            for e in session.scalars(
                select(AccessEvent).where(AccessEvent.recording_id == recording).order_by(AccessEvent.id)
            )
        ]
    for step in [
        ("rita", "qa_evaluate"),
        ("rita", "qa_submit"),
        ("alice", "qa_view"),
        ("alice", "qa_dispute"),
        ("sam", "qa_review"),
        ("alice", "qa_acknowledge"),
    ]:
        assert step in actions, step

    # Editing the form in use: a new version; removing a question is refused.
    edited = copy.deepcopy(FORM)
    for s, section in enumerate(form["sections"]):
        edited["sections"][s]["id"] = section["id"]
        for q, question in enumerate(section["questions"]):
            edited["sections"][s]["questions"][q]["id"] = question["id"]
    fewer = copy.deepcopy(edited)
    fewer["sections"][1]["questions"].pop()  # the comment question
    removed = sam("PUT", f"/qa/forms/{form['id']}", json=fewer)
    assert removed.status_code == 409 and "cannot be removed" in removed.json()["detail"]
    edited["sections"][1]["questions"][0]["text"] = "Empathy shown"
    version = sam("PUT", f"/qa/forms/{form['id']}", json=edited).json()
    assert version["id"] != form["id"] and version["version"] == 2 and version["family_id"] == form["id"]
    assert alice("GET", f"/qa/evaluations/{evaluation_id}").json()["form_id"] == form["id"]
    assert sam("POST", "/qa/evaluations", json=body).status_code == 409  # same form family, same call


def test_auto_fail_zeroes_and_raises_an_alert(ctx: ServiceContext, qa_api: Api) -> None:
    sam, rita = qa_api.as_("sam"), qa_api.as_("rita")
    form = sam("POST", "/qa/forms", json=FORM).json()
    recording = seal_call(ctx, agent_aor=ALICE)
    evaluation = rita(
        "POST", "/qa/evaluations", json={"recording_id": recording, "form_id": form["id"]}
    ).json()
    rita("PUT", f"/qa/evaluations/{evaluation['id']}", json={"answers": answers("no", "yes", 5, "full")})
    result = rita("POST", f"/qa/evaluations/{evaluation['id']}/submit").json()
    assert result["score"] == 0.0 and result["auto_failed"] is True
    assert result["section_scores"]["2"] == 100.0
    with ctx.catalog.read() as session:
        kinds = [a.kind for a in session.scalars(select(Alert).where(Alert.recording_id == recording))]
    assert kinds == ["qa_auto_fail"]


def test_calibration_with_three_evaluators(ctx: ServiceContext, qa_api: Api) -> None:
    sam, rita, ray, alice = (qa_api.as_(n) for n in ("sam", "rita", "ray", "alice"))
    form = sam("POST", "/qa/forms", json=FORM).json()
    recording = seal_call(ctx, agent_aor=ALICE)
    session_body = {
        "name": "Week 49",
        "recording_id": recording,
        "form_id": form["id"],
        "evaluators": ["sam", "rita", "ray"],
    }
    outsider = sam("POST", "/qa/calibrations", json={**session_body, "evaluators": ["rita", "quinn"]})
    assert outsider.status_code == 400 and "quinn may not evaluate" in outsider.json()["detail"]
    calibration = sam("POST", "/qa/calibrations", json=session_body)
    assert calibration.status_code == 201, calibration.text
    calibration_id = calibration.json()["id"]
    given = {
        "sam": ("yes", "yes", 5, "full"),
        "rita": ("yes", "no", 4, "full"),
        "ray": ("yes", "yes", 1, "none"),
    }
    for name, values in given.items():
        call = qa_api.as_(name)
        evaluation = call(
            "POST",
            "/qa/evaluations",
            json={"recording_id": recording, "form_id": form["id"], "calibration_id": calibration_id},
        )
        assert evaluation.status_code == 201, evaluation.text
        evaluation_id = evaluation.json()["id"]
        call("PUT", f"/qa/evaluations/{evaluation_id}", json={"answers": answers(*values)})  # type: ignore[arg-type]
        if name == "ray":
            early = ray("GET", f"/qa/calibrations/{calibration_id}/results")
            assert early.status_code == 409  # independence: submit first
        assert call("POST", f"/qa/evaluations/{evaluation_id}/submit").status_code == 200
    results = sam("GET", f"/qa/calibrations/{calibration_id}/results").json()["results"]
    assert results["evaluations"] == 3
    by_question = {q["question_id"]: q for q in results["questions"]}
    assert by_question[1]["variance"] == 0.0  # everyone read the disclosure
    # Empathy 100, 75, 0: mean 58.33, variance (41.67² + 16.67² + 58.33²)/3 = 1805.56.
    assert by_question[3]["variance"] == pytest.approx(1805.56)
    assert by_question[3]["answers"]["ray"] == {"value": 1, "score": 0.0}
    assert results["evaluators"][0]["evaluator"] == "ray"  # the most out of line
    # Calibration scores are no agent's business, and never reach the agent's list.
    assert alice("GET", "/qa/evaluations").json()["items"] == []
    assert alice("GET", f"/qa/calibrations/{calibration_id}/results").status_code == 403
    with ctx.catalog.read() as session:
        assert session.scalar(select(QaEvaluation.id).where(QaEvaluation.calibration_id.is_(None))) is None


def test_calibration_scores_stay_hidden_until_you_submit(ctx: ServiceContext, qa_api: Api) -> None:
    sam, rita, ray = qa_api.as_("sam"), qa_api.as_("rita"), qa_api.as_("ray")
    form = sam("POST", "/qa/forms", json=FORM).json()
    recording = seal_call(ctx, agent_aor=ALICE)
    calibration_id = sam(
        "POST",
        "/qa/calibrations",
        json={"name": "c", "recording_id": recording, "form_id": form["id"], "evaluators": ["rita", "ray"]},
    ).json()["id"]
    start = {"recording_id": recording, "form_id": form["id"], "calibration_id": calibration_id}
    ids = {
        name: qa_api.as_(name)("POST", "/qa/evaluations", json=start).json()["id"] for name in ("rita", "ray")
    }
    assert rita("POST", "/qa/evaluations", json=start).status_code == 409  # one each
    rita("PUT", f"/qa/evaluations/{ids['rita']}", json={"answers": answers("yes", "yes", 5, "full")})
    assert rita("POST", f"/qa/evaluations/{ids['rita']}/submit").status_code == 200
    assert ray("GET", f"/qa/evaluations/{ids['rita']}").status_code == 404  # ray has not submitted
    assert ids["rita"] not in [e["id"] for e in ray("GET", "/qa/evaluations").json()["items"]]
    ray("PUT", f"/qa/evaluations/{ids['ray']}", json={"answers": answers("yes", "no", 3, "none")})
    assert ray("POST", f"/qa/evaluations/{ids['ray']}/submit").status_code == 200
    assert ray("GET", f"/qa/evaluations/{ids['rita']}").status_code == 200
    assert sam("GET", f"/qa/evaluations/{ids['ray']}").status_code == 200  # the QA lead, not an evaluator


def test_a_call_without_audio_cannot_be_evaluated(ctx: ServiceContext, qa_api: Api) -> None:
    sam = qa_api.as_("sam")
    form = sam("POST", "/qa/forms", json=FORM).json()
    call = CallRecord(
        started_at=datetime.now(UTC) - timedelta(minutes=5),
        source="siprec",
        direction="inbound",
        participants=[ParticipantRecord(aor=ALICE, role="agent")],
    )
    unrecorded = ctx.recordings.begin(call, rule={"name": "no record", "action": "do_not_record"})
    ctx.recordings.end_without_audio(unrecorded, "not_recorded", datetime.now(UTC), 60.0)
    refused = sam("POST", "/qa/evaluations", json={"recording_id": unrecorded, "form_id": form["id"]})
    assert refused.status_code == 409 and "no audio to evaluate" in refused.json()["detail"]
    clip = sam("POST", "/qa/clips", json={"recording_id": unrecorded, "start": 0, "end": 5, "title": "x"})
    assert clip.status_code == 409
