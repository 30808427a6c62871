"""Disputes: the evaluated agent contests an evaluation once; a reviewer upholds or changes it.

The reviewer is a supervisor or QA evaluator of the call's team (or an admin)
who is neither the evaluator nor the agent. Changing re-scores the evaluation
from the reviewer's answers; upholding keeps it. Either way a revision is
added (:class:`callvault.db.qa_models.QaRevision`), so the evaluation's
history shows the submitted score and the reviewed one side by side, and
both steps are in the audit trail. A call under an open dispute is not
resampled into the evaluation queue.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.db.qa_models import QaDispute, QaEvaluation, QaForm
from callvault.errors import InvalidInput, NotFound, PermissionDenied
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.qa_evaluations import revision, visible
from callvault.services.qa_scope import condition, in_scope
from callvault.services.qa_scoring import parse_answers, score, unanswered
from callvault.services.qa_views import dispute_view, evaluation_view
from callvault.services.qa_workflow import Move, State, advance

OUTCOMES = {"uphold": "upheld", "change": "changed"}


class DisputeService:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def open(self, principal: Principal, evaluation_id: int, body: Any) -> dict[str, Any]:
        require(principal, Action.QA_DISPUTE)
        if not isinstance(body, dict) or set(body) != {"reason"}:
            raise InvalidInput('a dispute is {"reason": "why the score is wrong"}')
        reason = body["reason"]
        if not isinstance(reason, str) or not reason.strip() or len(reason) > 4000:
            raise InvalidInput("reason must be a non-empty text of at most 4000 characters")
        with self._catalog.write() as session:
            evaluation = visible(session, principal, evaluation_id, lock=True)
            if evaluation.agent_user_id != principal.user_id:
                raise PermissionDenied("only the evaluated agent disputes an evaluation")
            evaluation.state = advance(evaluation.state, Move.DISPUTE).value
            now = datetime.now(UTC)
            evaluation.updated_at = now
            session.add(
                QaDispute(
                    evaluation_id=evaluation.id,
                    reason=reason.strip(),
                    opened_at=now,
                    opened_by=principal.username,
                    score_before=evaluation.score,
                )
            )
            session.flush()
            self._log.record_in(
                session,
                principal,
                "qa_dispute",
                evaluation.recording_id,
                detail=f"evaluation {evaluation.id}",
            )
            return evaluation_view(session, evaluation)

    def review(self, principal: Principal, evaluation_id: int, body: Any) -> dict[str, Any]:
        """``{"outcome": "uphold" | "change", "answers": [...] (change only), "note"}``."""
        require(principal, Action.QA_REVIEW)
        if not isinstance(body, dict) or not set(body) <= {"outcome", "answers", "note"}:
            raise InvalidInput('a review is {"outcome": "uphold" | "change", "answers", "note"}')
        outcome = body.get("outcome")
        if outcome not in OUTCOMES:
            raise InvalidInput('outcome must be "uphold" or "change"')
        if (outcome == "change") != ("answers" in body):
            raise InvalidInput("answers come with outcome change, and only with it")
        note = body.get("note")
        if note is not None and (not isinstance(note, str) or len(note) > 4000):
            raise InvalidInput("note must be text of at most 4000 characters")
        with self._catalog.write() as session:
            evaluation = session.get(QaEvaluation, evaluation_id, with_for_update=True)
            if evaluation is None or not in_scope(
                principal, Action.QA_REVIEW, evaluation.team_id, evaluation.agent_user_id
            ):
                raise NotFound(f"evaluation {evaluation_id} not found")
            if principal.username == evaluation.evaluator or principal.user_id == evaluation.agent_user_id:
                raise PermissionDenied(
                    "a dispute is reviewed by someone other than the evaluator and the agent"
                )
            evaluation.state = advance(evaluation.state, Move.REVIEW).value
            dispute = session.scalar(select(QaDispute).where(QaDispute.evaluation_id == evaluation.id))
            assert dispute is not None
            if outcome == "change":
                self._rescore(session, evaluation, body["answers"])
            now = datetime.now(UTC)
            evaluation.updated_at = now
            dispute.outcome = OUTCOMES[outcome]
            dispute.note = note
            dispute.reviewed_at, dispute.reviewed_by = now, principal.username
            dispute.score_after = evaluation.score
            session.add(revision(evaluation, f"dispute_{dispute.outcome}", principal.username, now, note))
            self._log.record_in(
                session,
                principal,
                "qa_review",
                evaluation.recording_id,
                detail=f"evaluation {evaluation.id}: {dispute.outcome}",
            )
            return evaluation_view(session, evaluation)

    def list(self, principal: Principal, open_only: bool = False) -> list[dict[str, Any]]:
        """Disputes on evaluations in the caller's ``qa.view`` scope, newest first."""
        query = (
            select(QaDispute)
            .join(QaEvaluation, QaEvaluation.id == QaDispute.evaluation_id)
            .where(condition(principal, Action.QA_VIEW, QaEvaluation.team_id, QaEvaluation.agent_user_id))
            .order_by(QaDispute.id.desc())
            .limit(500)
        )
        if open_only:
            query = query.where(QaEvaluation.state == State.DISPUTED.value)
        with self._catalog.read() as session:
            return [v for v in (dispute_view(d) for d in session.scalars(query)) if v is not None]

    @staticmethod
    def _rescore(session: Any, evaluation: QaEvaluation, raw: Any) -> None:
        form = session.get(QaForm, evaluation.form_id)
        recording = session.get(Recording, evaluation.recording_id)
        duration = recording.duration_seconds if recording is not None else None
        answers = parse_answers(form.definition, raw, duration)
        missing = unanswered(form.definition, answers)
        if missing:
            raise InvalidInput(f"question(s) {', '.join(map(str, missing))} are not answered")
        result = score(form.definition, answers)
        if result.score is None:
            raise InvalidInput("every scored question is N/A: there is nothing to score")
        evaluation.answers = answers
        evaluation.score, evaluation.auto_failed = result.score, result.auto_failed
        evaluation.section_scores = result.sections
