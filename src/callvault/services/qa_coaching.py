"""Coaching items: a supervisor links evaluations and clips into a task for one agent.

An item has a title, notes, a due date, the agent's evaluations it is about
and clips to listen to; creating it shares those clips with the agent (the
library's share rows), so they play for them. The agent acknowledges it once.
Coaches (``qa.coach``) create items for agents in their scope; agents see
their own, coaches their team's. Both steps are audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.qa_models import QaClip, QaCoaching, QaEvaluation, QaShare
from callvault.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from callvault.services.access import Action, Principal, Role, require
from callvault.services.audit import AccessLog
from callvault.services.manifest import iso
from callvault.services.qa_scope import aware, condition, in_scope, is_row_id, user_id_named
from callvault.services.qa_views import username

_FIELDS = {"agent", "title", "notes", "due", "evaluation_ids", "clip_ids"}


class CoachingService:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def create(self, principal: Principal, body: Any) -> dict[str, Any]:
        require(principal, Action.QA_COACH)
        if not isinstance(body, dict) or not set(body) <= _FIELDS:
            raise InvalidInput(f"a coaching item has the fields {', '.join(sorted(_FIELDS))}")
        title, notes = body.get("title"), body.get("notes")
        if not isinstance(title, str) or not title.strip() or len(title) > 200:
            raise InvalidInput("title must be a non-empty string of at most 200 characters")
        if notes is not None and (not isinstance(notes, str) or len(notes) > 4000):
            raise InvalidInput("notes must be text of at most 4000 characters")
        due = _due(body.get("due"))
        evaluation_ids, clip_ids = (
            _ids(body.get("evaluation_ids"), "evaluation_ids"),
            _ids(body.get("clip_ids"), "clip_ids"),
        )
        with self._catalog.write() as session:
            agent = user_id_named(session, body.get("agent"), "agent")
            if agent.role != Role.AGENT.value or not in_scope(
                principal, Action.QA_COACH, agent.team_id, agent.id
            ):
                raise InvalidInput(f"agent: {agent.username} is not an agent you coach")
            for evaluation_id in evaluation_ids:
                evaluation = session.get(QaEvaluation, evaluation_id)
                if evaluation is None or evaluation.agent_user_id != agent.id or evaluation.calibration_id:
                    raise InvalidInput(
                        f"evaluation_ids: {evaluation_id} is not an evaluation of {agent.username}"
                    )
            for clip_id in clip_ids:
                clip = session.get(QaClip, clip_id)
                if clip is None or not in_scope(principal, Action.QA_COACH, clip.team_id, clip.agent_user_id):
                    raise InvalidInput(f"clip_ids: clip {clip_id} not found")
                session.add(QaShare(clip_id=clip_id, user_id=agent.id))
            item = QaCoaching(
                agent_user_id=agent.id,
                team_id=agent.team_id,
                title=title.strip(),
                notes=notes,
                due=due,
                evaluation_ids=evaluation_ids,
                clip_ids=clip_ids,
                created_at=datetime.now(UTC),
                created_by=principal.username,
            )
            session.add(item)
            session.flush()
            self._log.record_in(
                session, principal, "coaching_create", detail=f"coaching {item.id} for {agent.username}"
            )
            return _view(session, item)

    def list(self, principal: Principal) -> list[dict[str, Any]]:
        query = (
            select(QaCoaching)
            .where(condition(principal, Action.QA_VIEW, QaCoaching.team_id, QaCoaching.agent_user_id))
            .order_by(QaCoaching.id.desc())
            .limit(500)
        )
        with self._catalog.read() as session:
            return [_view(session, c) for c in session.scalars(query)]

    def acknowledge(self, principal: Principal, item_id: int) -> dict[str, Any]:
        with self._catalog.write() as session:
            item = session.get(QaCoaching, item_id, with_for_update=True)
            if item is None or not in_scope(principal, Action.QA_VIEW, item.team_id, item.agent_user_id):
                raise NotFound(f"coaching item {item_id} not found")
            if item.agent_user_id != principal.user_id:
                raise PermissionDenied("only the coached agent acknowledges a coaching item")
            if item.acknowledged_at is not None:
                raise Conflict(f"coaching item {item_id} is already acknowledged")
            item.acknowledged_at = datetime.now(UTC)
            self._log.record_in(session, principal, "coaching_ack", detail=f"coaching {item.id}")
            return _view(session, item)


def _due(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput("due must be an ISO 8601 date or date-time")
    try:
        return aware(datetime.fromisoformat(value))
    except ValueError:
        raise InvalidInput("due must be an ISO 8601 date or date-time") from None


def _ids(value: Any, what: str) -> list[int]:
    if value is None:
        return []
    if (
        not isinstance(value, list)
        or len(value) > 100
        or not all(is_row_id(v) for v in value)
        or len(set(value)) != len(value)
    ):
        raise InvalidInput(f"{what} must be a list of at most 100 distinct ids")
    return list(value)


def _view(session: Session, item: QaCoaching) -> dict[str, Any]:
    return {
        "id": item.id,
        "agent": username(session, item.agent_user_id),
        "title": item.title,
        "notes": item.notes,
        "due": iso(item.due),
        "evaluation_ids": item.evaluation_ids,
        "clip_ids": item.clip_ids,
        "created_at": iso(item.created_at),
        "created_by": item.created_by,
        "acknowledged_at": iso(item.acknowledged_at),
    }
