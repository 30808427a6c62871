"""The evaluation queue, filled by sampling rules (``/api/v1/qa/sampling-rules``, ``/qa/queue``).

A rule is either ``random`` (``per_week`` calls per agent per ISO week) or
``targeted`` (up to ``per_week`` calls a week matching its criteria, oldest
first); both may narrow the calls by ``criteria``: duration, status, tags and
what speech analytics found (phrase categories, overtalk, customer sentiment;
see :mod:`.qa_sampling_criteria`). A run samples the calls *started* in one ISO week
(``2026-W49``) into the queue, once per call: a call already queued, already
evaluated (also one whose evaluation is under dispute) is never sampled again,
and a call being recorded or whose audio is destroyed is not sampled at all.

The random draw is seeded by rule, week and agent, so running a week again
adds nothing new and two servers draw the same calls. Runs are idempotent:
``callvault qa sample`` can run from cron every day.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import Recording
from callvault.db.qa_models import QaEvaluation, QaQueueItem, QaSamplingRule
from callvault.errors import InvalidInput, PermissionDenied
from callvault.services.access import Action, Principal, Scope, require
from callvault.services.audit import AccessLog
from callvault.services.manifest import iso
from callvault.services.qa_forms import load as load_form
from callvault.services.qa_sampling_criteria import criteria_conditions, parse_criteria
from callvault.services.qa_scope import condition, team_named
from callvault.services.qa_views import team_name, username
from callvault.services.recordings import FINAL_STATUSES

KINDS = ("random", "targeted")
MAX_PER_WEEK = 1000
_RULE_FIELDS = {"name", "form_id", "kind", "per_week", "team", "criteria"}
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


def parse_week(value: str | None, now: datetime | None = None) -> tuple[str, datetime, datetime]:
    """``(label, start, end)`` of an ISO week ``YYYY-Www`` (None: the current week), UTC."""
    if value is None:
        year, week, _ = (now or datetime.now(UTC)).isocalendar()
    else:
        match = _WEEK.match(value.strip())
        if match is None:
            raise InvalidInput("week must be an ISO week such as 2026-W49")
        year, week = int(match.group(1)), int(match.group(2))
    try:
        start = datetime.fromisocalendar(year, week, 1).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a week of the calendar") from None
    return f"{year:04d}-W{week:02d}", start, start + timedelta(days=7)


class SamplingService:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def create_rule(self, principal: Principal, body: Any) -> dict[str, Any]:
        require(principal, Action.QA_FORM_MANAGE)
        if not isinstance(body, dict) or not set(body) <= _RULE_FIELDS:
            raise InvalidInput(f"a sampling rule has the fields {', '.join(sorted(_RULE_FIELDS))}")
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidInput("name must be a non-empty string of at most 200 characters")
        kind, per_week = body.get("kind", "random"), body.get("per_week")
        if kind not in KINDS:
            raise InvalidInput(f"kind must be one of {', '.join(KINDS)}")
        if isinstance(per_week, bool) or not isinstance(per_week, int) or not 1 <= per_week <= MAX_PER_WEEK:
            raise InvalidInput(f"per_week must be a whole number from 1 to {MAX_PER_WEEK}")
        with self._catalog.write() as session:
            criteria = parse_criteria(session, body.get("criteria"))
            form = load_form(session, body.get("form_id"))
            team_id = self._team(session, principal, body.get("team"))
            rule = QaSamplingRule(
                name=name.strip(),
                form_id=form.id,
                team_id=team_id,
                kind=kind,
                per_week=per_week,
                criteria=criteria,
                created_at=datetime.now(UTC),
                created_by=principal.username,
            )
            session.add(rule)
            session.flush()
            self._log.record_in(session, principal, "qa_rule_create", detail=f"rule {rule.id} {rule.name}")
            return _rule_view(session, rule)

    def list_rules(self, principal: Principal) -> list[dict[str, Any]]:
        require(principal, Action.QA_EVALUATE)
        with self._catalog.read() as session:
            return [_rule_view(session, r) for r in session.scalars(self._rules_in_scope(principal))]

    def run(self, principal: Principal, week: str | None = None) -> dict[str, Any]:
        """Sample the calls started in ``week`` by every rule in scope; returns what was added."""
        require(principal, Action.QA_EVALUATE)
        label, start, end = parse_week(week)
        added: list[QaQueueItem] = []
        with self._catalog.write() as session:
            for rule in list(session.scalars(self._rules_in_scope(principal))):
                added.extend(self._sample(session, principal, rule, label, start, end))
            session.flush()
            self._log.record_many_in(
                session,
                principal,
                "qa_sample",
                [(i.recording_id, f"{label} rule {i.rule_id}") for i in added],
            )
            return {"week": label, "added": len(added), "items": [_item_view(session, i) for i in added]}

    def queue(self, principal: Principal, include_started: bool = False) -> list[dict[str, Any]]:
        """Queued calls in the caller's ``qa.evaluate`` scope, oldest call first."""
        query = (
            select(QaQueueItem)
            .where(condition(principal, Action.QA_EVALUATE, QaQueueItem.team_id, QaQueueItem.agent_user_id))
            .order_by(QaQueueItem.week, QaQueueItem.id)
            .limit(1000)
        )
        if not include_started:
            query = query.where(QaQueueItem.evaluation_id.is_(None))
        with self._catalog.read() as session:
            return [_item_view(session, i) for i in session.scalars(query)]

    def _sample(
        self,
        session: Session,
        principal: Principal,
        rule: QaSamplingRule,
        week: str,
        start: datetime,
        end: datetime,
    ) -> list[QaQueueItem]:
        candidates = list(
            session.execute(
                select(Recording.id, Recording.agent_user_id, Recording.team_id)
                .where(
                    Recording.started_at >= start,
                    Recording.started_at < end,
                    Recording.agent_user_id.is_not(None),
                    condition(principal, Action.QA_EVALUATE, Recording.team_id, Recording.agent_user_id),
                    _eligible(rule),
                )
                .order_by(Recording.started_at, Recording.id)
            )
        )
        already = dict(
            session.execute(
                select(QaQueueItem.agent_user_id, func.count())
                .where(QaQueueItem.rule_id == rule.id, QaQueueItem.week == week)
                .group_by(QaQueueItem.agent_user_id)
            ).all()
        )
        calls_of = [(str(r), int(a or 0), t) for r, a, t in candidates]  # agent_user_id IS NOT NULL
        picked: list[tuple[str, int, int | None]] = []
        if rule.kind == "targeted":
            room = rule.per_week - sum(int(n) for n in already.values())
            picked = calls_of[: max(0, room)]
        else:
            by_agent: dict[int, list[tuple[str, int, int | None]]] = {}
            for call in calls_of:
                by_agent.setdefault(call[1], []).append(call)
            for agent_id, calls in sorted(by_agent.items()):
                room = max(0, rule.per_week - int(already.get(agent_id, 0)))
                draw = random.Random(f"{rule.id}/{week}/{agent_id}")  # noqa: S311 - sampling, not secrecy
                picked.extend(draw.sample(calls, min(room, len(calls))))
        reason = f"{rule.kind}: {rule.name}"
        items = [
            QaQueueItem(
                recording_id=recording_id,
                rule_id=rule.id,
                form_id=rule.form_id,
                team_id=team_id,
                agent_user_id=agent_id,
                week=week,
                reason=reason[:200],
                created_at=datetime.now(UTC),
            )
            for recording_id, agent_id, team_id in picked
        ]
        session.add_all(items)
        session.flush()
        return items

    @staticmethod
    def _team(session: Session, principal: Principal, name: Any) -> int | None:
        scope = require(principal, Action.QA_EVALUATE)
        if name is None:
            return None if scope is Scope.ALL else principal.team_id
        team_id = team_named(session, name, "team")
        if scope is not Scope.ALL and team_id != principal.team_id:
            raise PermissionDenied(f"team: {name} is not your team")
        return team_id

    @staticmethod
    def _rules_in_scope(principal: Principal) -> Any:
        scope = require(principal, Action.QA_EVALUATE)
        query = select(QaSamplingRule).order_by(QaSamplingRule.id)
        if scope is not Scope.ALL:
            query = query.where(
                (QaSamplingRule.team_id == principal.team_id) | QaSamplingRule.team_id.is_(None)
            )
        return query


def _eligible(rule: QaSamplingRule) -> ColumnElement[bool]:
    criteria = rule.criteria
    evaluated = select(QaEvaluation.recording_id).where(QaEvaluation.calibration_id.is_(None))
    queued = select(QaQueueItem.recording_id)
    parts: list[ColumnElement[bool]] = [
        Recording.status.in_(criteria.get("statuses") or FINAL_STATUSES),
        Recording.deleted_at.is_(None),
        Recording.key_destroyed_at.is_(None),
        Recording.id.not_in(evaluated),
        Recording.id.not_in(queued),
    ]
    if rule.team_id is not None:
        parts.append(Recording.team_id == rule.team_id)
    parts.extend(criteria_conditions(criteria))
    return and_(*parts)


def _rule_view(session: Session, rule: QaSamplingRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "form_id": rule.form_id,
        "kind": rule.kind,
        "per_week": rule.per_week,
        "team": team_name(session, rule.team_id),
        "criteria": rule.criteria,
        "created_at": iso(rule.created_at),
        "created_by": rule.created_by,
    }


def _item_view(session: Session, item: QaQueueItem) -> dict[str, Any]:
    recording = session.get(Recording, item.recording_id)
    return {
        "id": item.id,
        "recording_id": item.recording_id,
        "call_started_at": iso(recording.started_at) if recording is not None else None,
        "duration_seconds": recording.duration_seconds if recording is not None else None,
        "agent": username(session, item.agent_user_id),
        "team": team_name(session, item.team_id),
        "form_id": item.form_id,
        "week": item.week,
        "reason": item.reason,
        "evaluation_id": item.evaluation_id,
    }
