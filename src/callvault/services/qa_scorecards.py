"""Scorecards (``/api/v1/qa/scorecards``): per agent, team or form, over a period of call dates.

Counted: submitted evaluations (their current score, after any dispute's
review), never drafts or calibration. Each line gives the number evaluated,
the average score, the auto-fail rate, the average per section (by section
title), the trend per ISO week of the *call's* date, and, for agents and
teams, the target: the ``random`` sampling rules' calls per agent per week
that apply to them, times the weeks of the period (times the team's agents).
Scope is ``qa.view``'s: agents get their own line, supervisors and QA
evaluators their team's.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import User
from callvault.db.qa_models import QaEvaluation, QaForm, QaSamplingRule
from callvault.errors import InvalidInput
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.qa_scope import aware, condition
from callvault.services.qa_views import rounded, team_name, username
from callvault.services.qa_workflow import State

GROUPS = ("agent", "team", "form")
DEFAULT_WEEKS = 12
MAX_DAYS = 3 * 366
CSV_COLUMNS = ["group", "name", "week", "evaluations", "average_score", "auto_fail_rate", "target"]


class ScorecardService:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def report(
        self,
        principal: Principal,
        group: str = "agent",
        start: datetime | None = None,
        end: datetime | None = None,
        form_id: int | None = None,
    ) -> dict[str, Any]:
        require(principal, Action.QA_VIEW)
        if group not in GROUPS:
            raise InvalidInput(f"group must be one of {', '.join(GROUPS)}")
        end = aware(end) if end else datetime.now(UTC)
        start = aware(start) if start else end - timedelta(weeks=DEFAULT_WEEKS)
        if not timedelta(0) < end - start <= timedelta(days=MAX_DAYS):
            raise InvalidInput(f"the period runs forward and covers at most {MAX_DAYS} days")
        query = select(QaEvaluation).where(
            condition(principal, Action.QA_VIEW, QaEvaluation.team_id, QaEvaluation.agent_user_id),
            QaEvaluation.state != State.DRAFT.value,
            QaEvaluation.calibration_id.is_(None),
            QaEvaluation.call_started_at >= start,
            QaEvaluation.call_started_at < end,
        )
        if form_id is not None:
            query = query.where(QaEvaluation.form_id.in_(_family(form_id)))
        with self._catalog.write() as session:
            evaluations = list(session.scalars(query.order_by(QaEvaluation.call_started_at)))
            # Whole weeks of the period, rounded (a "last 14 days" period is 2 weeks, not 3).
            weeks = max(1, round((end - start).total_seconds() / (7 * 86400)))
            lines = [
                _line(session, group, key, rows, weeks)
                for key, rows in sorted(
                    _grouped(session, group, evaluations).items(), key=lambda kv: str(kv[0])
                )
            ]
            self._log.record_in(
                session, principal, "qa_scorecard", detail=f"{group}: {len(evaluations)} evaluation(s)"
            )
        return {"group": group, "from": start.isoformat(), "to": end.isoformat(), "lines": lines}

    @staticmethod
    def to_csv(report: dict[str, Any]) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for line in report["lines"]:
            name = _safe(line["name"])
            writer.writerow(
                [
                    report["group"],
                    name,
                    "all",
                    line["evaluations"],
                    line["average_score"],
                    line["auto_fail_rate"],
                    line["target"],
                ]
            )
            for week in line["trend"]:
                writer.writerow(
                    [report["group"], name, week["week"], week["evaluations"], week["average_score"], "", ""]
                )
        return out.getvalue()


def _safe(value: Any) -> str:
    """No spreadsheet formula injection through a name (=, +, -, @ at the start)."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _family(form_id: int) -> Any:
    family = select(QaForm.family_id).where(QaForm.id == form_id).scalar_subquery()
    return select(QaForm.id).where(QaForm.family_id == family)


def _grouped(session: Session, group: str, evaluations: list[QaEvaluation]) -> dict[Any, list[QaEvaluation]]:
    groups: dict[Any, list[QaEvaluation]] = defaultdict(list)
    for evaluation in evaluations:
        if group == "agent":
            key: Any = evaluation.agent_user_id
        elif group == "team":
            key = evaluation.team_id
        else:
            key = session.scalar(select(QaForm.family_id).where(QaForm.id == evaluation.form_id))
        groups[key].append(evaluation)
    return groups


def _mean(values: list[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _line(session: Session, group: str, key: Any, rows: list[QaEvaluation], weeks: int) -> dict[str, Any]:
    sections: dict[str, list[float]] = defaultdict(list)
    trend: dict[str, list[float]] = defaultdict(list)
    for evaluation in rows:
        form = session.get(QaForm, evaluation.form_id)
        assert form is not None
        titles = {str(s["id"]): s["title"] for s in form.definition["sections"]}
        for section_id, value in (evaluation.section_scores or {}).items():
            if value is not None:
                sections[titles.get(section_id, section_id)].append(float(value))
        year, week, _ = aware(evaluation.call_started_at).isocalendar()
        trend[f"{year:04d}-W{week:02d}"].append(float(evaluation.score or 0.0))
    if group == "agent":
        name = username(session, key)
    elif group == "team":
        name = team_name(session, key)
    else:
        name = session.scalar(select(QaForm.name).where(QaForm.family_id == key, QaForm.current.is_(True)))
    return {
        "key": key,
        "name": name,
        "evaluations": len(rows),
        "average_score": rounded(_mean([float(e.score or 0.0) for e in rows])),
        "auto_fail_rate": round(sum(1 for e in rows if e.auto_failed) / len(rows), 4),
        "sections": {title: rounded(_mean(values)) for title, values in sections.items()},
        "trend": [
            {"week": week, "evaluations": len(values), "average_score": rounded(_mean(values))}
            for week, values in sorted(trend.items())
        ],
        "target": _target(session, group, key, weeks),
    }


def _target(session: Session, group: str, key: Any, weeks: int) -> int | None:
    """Calls per week the random sampling rules ask for, over the period."""
    if group == "form" or key is None:
        return None
    team_id = key if group == "team" else session.scalar(select(User.team_id).where(User.id == key))
    per_agent = session.scalar(
        select(func.coalesce(func.sum(QaSamplingRule.per_week), 0)).where(
            QaSamplingRule.kind == "random",
            (QaSamplingRule.team_id == team_id) | QaSamplingRule.team_id.is_(None),
        )
    )
    agents = 1
    if group == "team":
        agents = int(
            session.scalar(
                select(func.count())
                .select_from(User)
                .where(User.team_id == key, User.role == "agent", User.disabled.is_(False))
            )
            or 0
        )
    return int(per_agent or 0) * weeks * agents
