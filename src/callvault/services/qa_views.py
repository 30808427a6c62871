"""How quality-management rows read in the API: evaluations with their answers, the call's
timeline to jump to, the dispute and every revision of the score."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.models import Recording, RecordingEvent, Team, User
from callvault.db.qa_models import QaDispute, QaEvaluation, QaForm, QaRevision
from callvault.services.manifest import iso
from callvault.services.qa_form_spec import questions
from callvault.services.qa_scoring import question_score

MAX_TIMELINE = 500


def rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def username(session: Session, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    return session.scalar(select(User.username).where(User.id == user_id))


def team_name(session: Session, team_id: int | None) -> str | None:
    if team_id is None:
        return None
    return session.scalar(select(Team.name).where(Team.id == team_id))


def evaluation_view(session: Session, evaluation: QaEvaluation, brief: bool = False) -> dict[str, Any]:
    form = session.get(QaForm, evaluation.form_id)
    assert form is not None
    view: dict[str, Any] = {
        "id": evaluation.id,
        "recording_id": evaluation.recording_id,
        "form_id": form.id,
        "form_name": form.name,
        "form_version": form.version,
        "call_started_at": iso(evaluation.call_started_at),
        "agent": username(session, evaluation.agent_user_id),
        "team": team_name(session, evaluation.team_id),
        "evaluator": evaluation.evaluator,
        "calibration_id": evaluation.calibration_id,
        "state": evaluation.state,
        "score": rounded(evaluation.score),
        "auto_failed": evaluation.auto_failed,
        "section_scores": {k: rounded(v) for k, v in (evaluation.section_scores or {}).items()},
        "created_at": iso(evaluation.created_at),
        "submitted_at": iso(evaluation.submitted_at),
        "acknowledged_at": iso(evaluation.acknowledged_at),
    }
    if brief:
        return view
    by_id = questions(form.definition)
    view["comment"] = evaluation.comment
    view["answers"] = [
        {
            "question_id": int(qid),
            "value": answer["value"],
            "at": answer["at"],
            "comment": answer["comment"],
            "score": rounded(question_score(by_id[int(qid)], answer["value"])),
        }
        for qid, answer in sorted(evaluation.answers.items(), key=lambda item: int(item[0]))
    ]
    view["sections"] = form.definition["sections"]
    recording = session.get(Recording, evaluation.recording_id)
    view["duration_seconds"] = recording.duration_seconds if recording is not None else None
    view["timeline"] = [
        {"kind": e.kind, "at": e.offset_seconds}
        for e in session.scalars(
            select(RecordingEvent)
            .where(RecordingEvent.recording_id == evaluation.recording_id)
            .order_by(RecordingEvent.offset_seconds, RecordingEvent.id)
            .limit(MAX_TIMELINE)
        )
    ]
    view["dispute"] = dispute_view(
        session.scalar(select(QaDispute).where(QaDispute.evaluation_id == evaluation.id))
    )
    view["history"] = [
        {
            "reason": r.reason,
            "score": rounded(r.score),
            "auto_failed": r.auto_failed,
            "answers": r.answers,
            "note": r.note,
            "at": iso(r.at),
            "by": r.by,
        }
        for r in session.scalars(
            select(QaRevision).where(QaRevision.evaluation_id == evaluation.id).order_by(QaRevision.id)
        )
    ]
    return view


def dispute_view(dispute: QaDispute | None) -> dict[str, Any] | None:
    if dispute is None:
        return None
    return {
        "id": dispute.id,
        "evaluation_id": dispute.evaluation_id,
        "reason": dispute.reason,
        "opened_at": iso(dispute.opened_at),
        "opened_by": dispute.opened_by,
        "outcome": dispute.outcome,
        "note": dispute.note,
        "reviewed_at": iso(dispute.reviewed_at),
        "reviewed_by": dispute.reviewed_by,
        "score_before": rounded(dispute.score_before),
        "score_after": rounded(dispute.score_after),
    }
