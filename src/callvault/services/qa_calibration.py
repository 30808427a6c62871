"""Calibration sessions (``/api/v1/qa/calibrations``): several evaluators score one call
independently on one form; the results show their answers side by side.

A QA lead (``qa.form.manage``, with the call in their ``qa.evaluate`` scope)
names the call, the form and the evaluators (people who may evaluate the
call), optionally an expert whose answers are the reference. Each evaluator
then starts an evaluation with the session's ``calibration_id``. Independence
is kept: an evaluator in the session sees the results only once their own
evaluation is submitted. Calibration evaluations never reach the agent or the
scorecards. Reading the results is audited with the call's recording id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.qa_models import QaCalibration, QaEvaluation, QaForm
from callvault.errors import Conflict, InvalidInput, NotFound
from callvault.services.access import Action, Principal, Role, require
from callvault.services.audit import AccessLog
from callvault.services.manifest import iso
from callvault.services.qa_calibration_stats import Scored, calibration_results
from callvault.services.qa_forms import load as load_form
from callvault.services.qa_scope import evaluable_recording, in_scope, user_id_named
from callvault.services.qa_workflow import State

MAX_EVALUATORS = 20
_FIELDS = {"name", "recording_id", "form_id", "evaluators", "expert"}


class CalibrationService:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def create(self, principal: Principal, body: Any) -> dict[str, Any]:
        require(principal, Action.QA_FORM_MANAGE)
        if not isinstance(body, dict) or not set(body) <= _FIELDS:
            raise InvalidInput(f"a calibration session has the fields {', '.join(sorted(_FIELDS))}")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidInput("name must be a non-empty string of at most 200 characters")
        evaluators = body.get("evaluators")
        if (
            not isinstance(evaluators, list)
            or not 2 <= len(evaluators) <= MAX_EVALUATORS
            or len(set(map(str, evaluators))) != len(evaluators)
        ):
            raise InvalidInput(f"evaluators must be 2-{MAX_EVALUATORS} distinct usernames")
        expert = body.get("expert")
        if expert is not None and expert not in evaluators:
            raise InvalidInput("expert must be one of the evaluators")
        with self._catalog.write() as session:
            recording = evaluable_recording(session, principal, Action.QA_EVALUATE, body.get("recording_id"))
            form = load_form(session, body.get("form_id"))
            if not form.current:
                raise Conflict(f"form {form.id} has a newer version; calibrate on the current one")
            for username in evaluators:
                _check_evaluator(session, username, recording.team_id)
            calibration = QaCalibration(
                name=name.strip(),
                recording_id=recording.id,
                form_id=form.id,
                team_id=recording.team_id,
                evaluators=list(evaluators),
                expert=expert,
                created_at=datetime.now(UTC),
                created_by=principal.username,
            )
            session.add(calibration)
            session.flush()
            self._log.record_in(
                session, principal, "qa_calibration", recording.id, detail=f"calibration {calibration.id}"
            )
            return _view(session, calibration)

    def get(self, principal: Principal, calibration_id: int) -> dict[str, Any]:
        with self._catalog.read() as session:
            return _view(session, self._visible(session, principal, calibration_id))

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        require(principal, Action.QA_EVALUATE)
        with self._catalog.read() as session:
            rows = session.scalars(select(QaCalibration).order_by(QaCalibration.id.desc()).limit(500))
            return [
                _view(session, c)
                for c in rows
                if principal.username in c.evaluators
                or in_scope(principal, Action.QA_REVIEW, c.team_id, None)
            ]

    def results(self, principal: Principal, calibration_id: int) -> dict[str, Any]:
        with self._catalog.write() as session:
            calibration = self._visible(session, principal, calibration_id)
            submitted = _submitted(session, calibration.id)
            if principal.username in calibration.evaluators and principal.username not in {
                e.evaluator for e in submitted
            }:
                raise Conflict("submit your own evaluation in this session before reading the results")
            form = session.get(QaForm, calibration.form_id)
            assert form is not None
            scored = [Scored(e.evaluator, e.answers, float(e.score or 0.0)) for e in submitted]
            results = calibration_results(form.definition, scored, calibration.expert)
            self._log.record_in(
                session,
                principal,
                "qa_calibration_view",
                calibration.recording_id,
                detail=f"calibration {calibration.id}",
            )
            return {**_view(session, calibration), "results": results}

    @staticmethod
    def _visible(session: Session, principal: Principal, calibration_id: int) -> QaCalibration:
        require(principal, Action.QA_EVALUATE)
        calibration = session.get(QaCalibration, calibration_id)
        if calibration is None or not (
            principal.username in calibration.evaluators
            or in_scope(principal, Action.QA_REVIEW, calibration.team_id, None)
        ):
            raise NotFound(f"calibration {calibration_id} not found")
        return calibration


def _check_evaluator(session: Session, username: Any, team_id: int | None) -> None:
    user = user_id_named(session, username, "evaluators")
    role = Role(user.role)
    evaluating_role = role in (Role.ADMIN, Role.SUPERVISOR, Role.QA_EVALUATOR)
    if user.disabled or not evaluating_role or (role is not Role.ADMIN and user.team_id != team_id):
        raise InvalidInput(f"evaluators: {user.username} may not evaluate this call")


def _submitted(session: Session, calibration_id: int) -> list[QaEvaluation]:
    return list(
        session.scalars(
            select(QaEvaluation)
            .where(QaEvaluation.calibration_id == calibration_id, QaEvaluation.state != State.DRAFT.value)
            .order_by(QaEvaluation.id)
        )
    )


def _view(session: Session, calibration: QaCalibration) -> dict[str, Any]:
    done = {e.evaluator: e.id for e in _submitted(session, calibration.id)}
    return {
        "id": calibration.id,
        "name": calibration.name,
        "recording_id": calibration.recording_id,
        "form_id": calibration.form_id,
        "evaluators": [
            {"username": u, "evaluation_id": done.get(u), "submitted": u in done}
            for u in calibration.evaluators
        ],
        "expert": calibration.expert,
        "created_at": iso(calibration.created_at),
        "created_by": calibration.created_by,
    }
