"""The recording assurance report: of the calls the PBX reported, how many were recorded, and how.

For calls started in [from, to): totals per outcome (see
:mod:`callvault.services.assurance`) with ``expected`` (all of them), the same
per agent and per team, and the calls that were not recorded complete
(oldest first, pageable, filterable by outcome), so a compliance officer can
follow each one up with its PBX call id. Phone numbers are not in it.

Scoped like the recordings it speaks of: admins, compliance officers and
auditors see every call, a supervisor their team's. Every run is audited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, false, func, select, true
from sqlalchemy.orm import Session

from callvault.db.assurance_models import ExpectedCall
from callvault.db.catalog import Catalog
from callvault.db.models import Team, User
from callvault.errors import InvalidInput
from callvault.services.access import Action, Principal, Scope, require
from callvault.services.assurance import OUTCOMES, RECORDED_COMPLETE, Period
from callvault.services.audit import AccessLog
from callvault.services.manifest import iso

MAX_PAGE = 1000


def _scope(principal: Principal) -> ColumnElement[bool]:
    scope = require(principal, Action.ASSURANCE_REPORT)
    if scope is Scope.ALL:
        return true()
    if scope is Scope.TEAM and principal.team_id is not None:
        return ExpectedCall.team_id == principal.team_id
    if scope is Scope.OWN and principal.user_id is not None:
        return ExpectedCall.agent_user_id == principal.user_id
    return false()


def _validate(period: Period) -> None:
    for value in (period.start, period.end):
        if value is not None and value.tzinfo is None:
            raise InvalidInput("from and to must include a time zone, e.g. 2026-01-31T00:00:00Z")
    if period.start and period.end and period.start > period.end:
        raise InvalidInput("'from' is after 'to'")


def _empty() -> dict[str, int]:
    return {"expected": 0} | {o: 0 for o in OUTCOMES}


class AssuranceReport:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def report(
        self,
        principal: Principal,
        period: Period,
        outcome: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> dict[str, Any]:
        scope = _scope(principal)
        _validate(period)
        within = [scope, *period.conditions()]
        if outcome is not None and outcome not in OUTCOMES:
            raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)}")
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, offset 0 or more")
        listed = [ExpectedCall.outcome == outcome] if outcome else [ExpectedCall.outcome != RECORDED_COMPLETE]
        with self._catalog.read() as session:
            totals, by_agent, by_team = self._counts(session, within)
            rows = session.scalars(
                select(ExpectedCall)
                .where(*within, *listed)
                .order_by(ExpectedCall.started_at, ExpectedCall.id)
                .limit(limit)
                .offset(offset)
            ).all()
            listed_total = session.scalar(
                select(func.count()).select_from(ExpectedCall).where(*within, *listed)
            )
            names = _names(session, {r.agent_user_id for r in rows}, {r.team_id for r in rows})
            items = [_item(row, names) for row in rows]
        self._log.record(
            principal,
            "assurance_report",
            detail=f"from={iso(period.start)} to={iso(period.end)} expected={totals['expected']} "
            f"missing={totals['missing']}",
        )
        return {
            "from": iso(period.start),
            "to": iso(period.end),
            "totals": totals,
            "by_agent": by_agent,
            "by_team": by_team,
            "total": int(listed_total or 0),
            "limit": limit,
            "offset": offset,
            "items": items,
        }

    @staticmethod
    def _counts(
        session: Session, within: list[ColumnElement[bool]]
    ) -> tuple[dict[str, int], list[dict[str, Any]], list[dict[str, Any]]]:
        grouped = session.execute(
            select(ExpectedCall.agent_user_id, ExpectedCall.team_id, ExpectedCall.outcome, func.count())
            .where(*within)
            .group_by(ExpectedCall.agent_user_id, ExpectedCall.team_id, ExpectedCall.outcome)
        ).all()
        names = _names(session, {g[0] for g in grouped}, {g[1] for g in grouped})
        totals = _empty()
        agents: dict[int | None, dict[str, Any]] = {}
        teams: dict[int | None, dict[str, Any]] = {}
        for user_id, team_id, outcome, count in grouped:
            agent = agents.setdefault(
                user_id, {"agent": names[0].get(user_id), "team": names[1].get(team_id)} | _empty()
            )
            team = teams.setdefault(team_id, {"team": names[1].get(team_id)} | _empty())
            for bucket in (totals, agent, team):
                bucket[outcome] = bucket.get(outcome, 0) + int(count)
                bucket["expected"] += int(count)
        by_agent = sorted(agents.values(), key=lambda a: (a["agent"] is None, a["agent"] or ""))
        by_team = sorted(teams.values(), key=lambda t: (t["team"] is None, t["team"] or ""))
        return totals, by_agent, by_team


def _names(
    session: Session, user_ids: set[int | None], team_ids: set[int | None]
) -> tuple[dict[int | None, str], dict[int | None, str]]:
    users = {i for i in user_ids if i is not None}
    teams = {i for i in team_ids if i is not None}
    user_names: dict[int | None, str] = {}
    team_names: dict[int | None, str] = {}
    for uid, username in session.execute(select(User.id, User.username).where(User.id.in_(users))):
        user_names[uid] = username
    for tid, name in session.execute(select(Team.id, Team.name).where(Team.id.in_(teams))):
        team_names[tid] = name
    return user_names, team_names


def _item(row: ExpectedCall, names: tuple[dict[int | None, str], dict[int | None, str]]) -> dict[str, Any]:
    return {
        "pbx_call_id": row.pbx_call_id,
        "started_at": iso(row.started_at),
        "ended_at": iso(row.ended_at),
        "direction": row.direction,
        "queue": row.queue,
        "agent": names[0].get(row.agent_user_id),
        "team": names[1].get(row.team_id),
        "outcome": row.outcome,
        "must_record": row.must_record,
        "recording_id": row.recording_id,
        "matched_by": row.matched_by,
        "ambiguous": row.ambiguous,
        "sip_call_id": row.sip_call_id,
        "vendor_call_id": row.vendor_call_id,
        "reconciled_at": iso(row.reconciled_at),
    }
