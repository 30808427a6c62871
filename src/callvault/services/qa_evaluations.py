"""Evaluating calls (``/api/v1/qa/evaluations``): start, fill in while listening, submit once.

An evaluator (supervisor or QA evaluator of the call's team, or an admin)
starts an evaluation of a finished call on a form's current version, saves
the draft as often as the page likes (each save replaces the answers and
returns the provisional score), and submits it once: every scored question
answered (N/A where allowed), the score computed here and kept as the first
revision. An auto-failed evaluation also raises an alert (``qa_auto_fail``)
for compliance officers: the question that failed is usually a mandatory
disclosure. Agents see their own evaluations once submitted, never drafts or
calibration scores. Every start, save, submit, view and acknowledgement is in
the audit trail with the call's recording id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.db.qa_models import QaCalibration, QaEvaluation, QaForm, QaQueueItem, QaRevision
from callvault.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from callvault.services.access import Action, Principal, Role, require
from callvault.services.alerts import AlertService, NewAlert
from callvault.services.audit import AccessLog
from callvault.services.qa_forms import load as load_form
from callvault.services.qa_scope import condition, evaluable_recording, in_scope, is_row_id
from callvault.services.qa_scoring import parse_answers, score, unanswered
from callvault.services.qa_views import evaluation_view
from callvault.services.qa_workflow import Move, State, advance

QA_AUTO_FAIL = "qa_auto_fail"
MAX_PAGE = 500


class EvaluationService:
    def __init__(self, catalog: Catalog, access_log: AccessLog, alerts: AlertService) -> None:
        self._catalog = catalog
        self._log = access_log
        self._alerts = alerts

    def create(self, principal: Principal, body: Any) -> dict[str, Any]:
        require(principal, Action.QA_EVALUATE)
        if not isinstance(body, dict):
            raise InvalidInput('an evaluation is {"recording_id", "form_id"}')
        unknown = sorted(set(body) - {"recording_id", "form_id", "calibration_id"})
        if unknown:
            raise InvalidInput(f"unknown field(s): {', '.join(unknown)}")
        now = datetime.now(UTC)
        with self._catalog.write() as session:
            recording = evaluable_recording(session, principal, Action.QA_EVALUATE, body.get("recording_id"))
            form = load_form(session, body.get("form_id"))
            calibration = self._calibration(
                session, principal, body.get("calibration_id"), recording.id, form
            )
            if calibration is None:
                if not form.current:
                    raise Conflict(f"form {form.id} has a newer version; evaluate with the current one")
                _not_evaluated_yet(session, recording.id, form)
            evaluation = QaEvaluation(
                form_id=form.id,
                recording_id=recording.id,
                call_started_at=recording.started_at,
                team_id=recording.team_id,
                agent_user_id=recording.agent_user_id,
                evaluator_user_id=principal.user_id,
                evaluator=principal.username,
                calibration_id=calibration.id if calibration else None,
                state=State.DRAFT.value,
                answers={},
                created_at=now,
                updated_at=now,
            )
            session.add(evaluation)
            session.flush()
            if calibration is None:
                queued = session.scalar(select(QaQueueItem).where(QaQueueItem.recording_id == recording.id))
                if queued is not None and queued.evaluation_id is None:
                    queued.evaluation_id = evaluation.id
            self._log.record_in(
                session, principal, "qa_evaluate", recording.id, detail=f"evaluation {evaluation.id}"
            )
            return evaluation_view(session, evaluation)

    def save(self, principal: Principal, evaluation_id: int, body: Any) -> dict[str, Any]:
        """Replace the draft's answers (and overall ``comment``); returns it with the provisional score."""
        if not isinstance(body, dict) or not set(body) <= {"answers", "comment"}:
            raise InvalidInput(
                'a draft is {"answers": [{"question_id", "value", "at", "comment"}], "comment"}'
            )
        with self._catalog.write() as session:
            evaluation, form = self._own_draft(session, principal, evaluation_id, Move.SAVE)
            duration = _duration(session, evaluation.recording_id)
            if "answers" in body:
                evaluation.answers = parse_answers(form.definition, body["answers"], duration)
            if "comment" in body:
                evaluation.comment = _comment(body["comment"])
            provisional = score(form.definition, evaluation.answers)
            evaluation.score = provisional.score
            evaluation.auto_failed = provisional.auto_failed
            evaluation.section_scores = provisional.sections
            evaluation.updated_at = datetime.now(UTC)
            self._log.record_in(
                session, principal, "qa_save", evaluation.recording_id, detail=f"evaluation {evaluation.id}"
            )
            return evaluation_view(session, evaluation)

    def submit(self, principal: Principal, evaluation_id: int) -> dict[str, Any]:
        with self._catalog.write() as session:
            evaluation, form = self._own_draft(session, principal, evaluation_id, Move.SUBMIT)
            missing = unanswered(form.definition, evaluation.answers)
            if missing:
                raise InvalidInput(
                    f'question(s) {", ".join(map(str, missing))} are not answered (answer "na" where allowed)'
                )
            result = score(form.definition, evaluation.answers)
            if result.score is None:
                raise InvalidInput("every scored question is N/A: there is nothing to score")
            now = datetime.now(UTC)
            evaluation.state = advance(evaluation.state, Move.SUBMIT).value
            evaluation.score, evaluation.auto_failed = result.score, result.auto_failed
            evaluation.section_scores = result.sections
            evaluation.submitted_at = evaluation.updated_at = now
            session.add(revision(evaluation, "submitted", principal.username, now, None))
            self._log.record_in(
                session,
                principal,
                "qa_submit",
                evaluation.recording_id,
                detail=f"evaluation {evaluation.id}: score {result.score:.2f}"
                + (" auto-failed" if result.auto_failed else ""),
            )
            if result.auto_failed and evaluation.calibration_id is None:
                self._alerts.raise_in(
                    session,
                    NewAlert(
                        QA_AUTO_FAIL,
                        f"evaluation {evaluation.id} auto-failed: an auto-fail question was answered no",
                        recording_id=evaluation.recording_id,
                    ),
                    principal,
                    None,
                    now,
                )
            return evaluation_view(session, evaluation)

    def get(self, principal: Principal, evaluation_id: int) -> dict[str, Any]:
        with self._catalog.write() as session:
            evaluation = visible(session, principal, evaluation_id)
            self._log.record_in(
                session, principal, "qa_view", evaluation.recording_id, detail=f"evaluation {evaluation.id}"
            )
            return evaluation_view(session, evaluation)

    def list(
        self,
        principal: Principal,
        recording_id: str | None = None,
        state: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Evaluations in scope, newest first (agents: their own, submitted, not calibration)."""
        query = (
            select(QaEvaluation)
            .where(condition(principal, Action.QA_VIEW, QaEvaluation.team_id, QaEvaluation.agent_user_id))
            .order_by(QaEvaluation.id.desc())
            .limit(max(1, min(limit, MAX_PAGE)))
            .offset(max(0, offset))
        )
        # Drafts and calibration scores of others are not listed (see visible()); calibration
        # results are read through their session.
        mine = QaEvaluation.evaluator == principal.username
        query = query.where(or_(QaEvaluation.calibration_id.is_(None), mine))
        if principal.role is Role.AGENT:
            query = query.where(
                QaEvaluation.state != State.DRAFT.value, QaEvaluation.calibration_id.is_(None)
            )
        elif principal.role not in (Role.ADMIN, Role.SUPERVISOR):
            query = query.where(or_(QaEvaluation.state != State.DRAFT.value, mine))
        if recording_id:
            query = query.where(QaEvaluation.recording_id == recording_id)
        if state:
            if state not in {s.value for s in State}:
                raise InvalidInput(f"state must be one of {', '.join(s.value for s in State)}")
            query = query.where(QaEvaluation.state == state)
        with self._catalog.write() as session:
            rows = list(session.scalars(query))
            self._log.record_in(session, principal, "qa_list", detail=f"{len(rows)} evaluation(s)")
            return [evaluation_view(session, e, brief=True) for e in rows]

    def acknowledge(self, principal: Principal, evaluation_id: int) -> dict[str, Any]:
        """The evaluated agent has read it (after a dispute: read the outcome)."""
        with self._catalog.write() as session:
            evaluation = visible(session, principal, evaluation_id, lock=True)
            if principal.user_id is None or evaluation.agent_user_id != principal.user_id:
                raise PermissionDenied("only the evaluated agent acknowledges an evaluation")
            evaluation.state = advance(evaluation.state, Move.ACKNOWLEDGE).value
            evaluation.acknowledged_at = datetime.now(UTC)
            self._log.record_in(
                session,
                principal,
                "qa_acknowledge",
                evaluation.recording_id,
                detail=f"evaluation {evaluation.id}",
            )
            return evaluation_view(session, evaluation)

    def _own_draft(
        self, session: Session, principal: Principal, evaluation_id: int, move: Move
    ) -> tuple[QaEvaluation, QaForm]:
        require(principal, Action.QA_EVALUATE)
        evaluation = visible(session, principal, evaluation_id, lock=True)
        if evaluation.evaluator != principal.username:
            raise PermissionDenied(f"evaluation {evaluation_id} is {evaluation.evaluator}'s to fill in")
        advance(evaluation.state, move)
        form = session.get(QaForm, evaluation.form_id)
        assert form is not None
        return evaluation, form

    @staticmethod
    def _calibration(
        session: Session, principal: Principal, calibration_id: Any, recording_id: str, form: QaForm
    ) -> QaCalibration | None:
        if calibration_id is None:
            return None
        if not is_row_id(calibration_id):
            raise InvalidInput("calibration_id must be a calibration session's id")
        calibration = session.get(QaCalibration, calibration_id)
        if calibration is None:
            raise NotFound(f"calibration {calibration_id} not found")
        if principal.username not in calibration.evaluators:
            raise PermissionDenied(
                f"{principal.username} is not an evaluator of calibration {calibration_id}"
            )
        if calibration.recording_id != recording_id or calibration.form_id != form.id:
            raise InvalidInput(
                f"calibration {calibration_id} is on recording {calibration.recording_id} with form "
                f"{calibration.form_id}"
            )
        taken = session.scalar(
            select(QaEvaluation.id).where(
                QaEvaluation.calibration_id == calibration_id, QaEvaluation.evaluator == principal.username
            )
        )
        if taken is not None:
            raise Conflict(f"you already have evaluation {taken} in calibration {calibration_id}")
        return calibration


def visible(session: Session, principal: Principal, evaluation_id: int, lock: bool = False) -> QaEvaluation:
    """An evaluation ``principal`` may see, else NotFound: in ``qa.view`` scope; for agents only
    submitted ones outside calibration; calibration scores only to their evaluator and reviewers."""
    evaluation = session.get(QaEvaluation, evaluation_id, with_for_update=lock)
    if evaluation is None or not in_scope(
        principal, Action.QA_VIEW, evaluation.team_id, evaluation.agent_user_id
    ):
        raise NotFound(f"evaluation {evaluation_id} not found")
    own = evaluation.evaluator == principal.username
    if principal.role is Role.AGENT and (evaluation.state == State.DRAFT or evaluation.calibration_id):
        raise NotFound(f"evaluation {evaluation_id} not found")
    if evaluation.state == State.DRAFT and not own and principal.role not in (Role.ADMIN, Role.SUPERVISOR):
        raise NotFound(f"evaluation {evaluation_id} not found")
    if evaluation.calibration_id is not None and not own and _calibrating(session, principal, evaluation):
        raise NotFound(f"evaluation {evaluation_id} not found")  # independence: submit yours first
    return evaluation


def _calibrating(session: Session, principal: Principal, evaluation: QaEvaluation) -> bool:
    """Whether ``principal`` is an evaluator of the evaluation's calibration session who has not
    submitted their own evaluation yet (and so must not see anyone else's)."""
    calibration = session.get(QaCalibration, evaluation.calibration_id)
    if calibration is None or principal.username not in calibration.evaluators:
        return False
    submitted = session.scalar(
        select(QaEvaluation.id).where(
            QaEvaluation.calibration_id == calibration.id,
            QaEvaluation.evaluator == principal.username,
            QaEvaluation.state != State.DRAFT.value,
        )
    )
    return submitted is None


def _not_evaluated_yet(session: Session, recording_id: str, form: QaForm) -> None:
    family = select(QaForm.id).where(QaForm.family_id == form.family_id)
    existing = session.scalar(
        select(QaEvaluation).where(
            QaEvaluation.recording_id == recording_id,
            QaEvaluation.calibration_id.is_(None),
            QaEvaluation.form_id.in_(family),
        )
    )
    if existing is not None:
        raise Conflict(
            f"this call already has evaluation {existing.id} on this form (by {existing.evaluator}, "
            f"{existing.state})"
        )


def _duration(session: Session, recording_id: str) -> float | None:
    recording = session.get(Recording, recording_id)
    return recording.duration_seconds if recording is not None else None


def _comment(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 4000:
        raise InvalidInput("comment must be text of at most 4000 characters")
    return value


def revision(evaluation: QaEvaluation, reason: str, by: str, at: datetime, note: str | None) -> QaRevision:
    return QaRevision(
        evaluation_id=evaluation.id,
        reason=reason,
        answers=dict(evaluation.answers),
        score=evaluation.score,
        auto_failed=evaluation.auto_failed,
        note=note,
        at=at,
        by=by,
    )
