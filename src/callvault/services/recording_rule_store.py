"""The recording rules in the catalogue: change them (audited), list them, evaluate calls against them.

Every change computes the whole new order first and checks it
(:func:`~callvault.services.recording_rules.check_order`: no rule may be
unreachable, no two may share a name) and the references it names (agents are
usernames, teams team names, both must exist) before anything is written; then
the rows, their dense positions and the audit entry go in one transaction, so a
refused change leaves nothing behind.

The recorder asks :meth:`RecordingRuleStore.decide` at every call start and
metadata change; the ordered rules are cached for a second so a busy recorder
reads them about once a second, and a change made in this process (the API)
is seen at once, one made by the CLI within that second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from datetime import time as clock_time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import Team, User
from callvault.db.rule_models import RecordingRule
from callvault.errors import InvalidInput, NotFound
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.recording_rules import (
    CallFacts,
    Decision,
    Match,
    Rule,
    RuleAction,
    check_order,
    decide,
    parse_match,
    parse_rule,
    zone_info,
)

CACHE_SECONDS = 1.0
MAX_RULES = 1000


def _rule_of(row: RecordingRule) -> Rule:
    raw = row.match or {}
    match = Match(
        **{key: frozenset(raw.get(key) or ()) for key in ("agents", "teams", "queues", "directions")},
        customers=frozenset(raw.get("customers") or ()),
        customer_prefixes=frozenset(raw.get("customer_prefixes") or ()),
        labels=frozenset(raw.get("labels") or ()),
        weekdays=frozenset(raw.get("weekdays") or ()),
        time_from=_clock(raw.get("time_from")),
        time_to=_clock(raw.get("time_to")),
        time_zone=raw.get("time_zone"),
    )
    action: RuleAction = row.action  # type: ignore[assignment]
    return Rule(
        row.name, action, match, row.sample_percent, tuple(row.set_labels or ()), row.id, bool(row.enabled)
    )


def _clock(value: str | None) -> clock_time | None:
    return None if not value else clock_time.fromisoformat(value)


class RecordingRuleStore:
    def __init__(self, catalog: Catalog, access_log: AccessLog, site_time_zone: str) -> None:
        zone_info(site_time_zone)
        self._catalog = catalog
        self._log = access_log
        self.site_time_zone = site_time_zone
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Rule]] | None = None

    # -- reading --------------------------------------------------------------------------------

    def list_rules(self, principal: Principal) -> list[dict[str, Any]]:
        require(principal, Action.RULES_VIEW)
        return [self._view(p, r) for p, r in enumerate(self.rules(fresh=True), 1)]

    def get(self, principal: Principal, rule_id: int) -> dict[str, Any]:
        require(principal, Action.RULES_VIEW)
        for position, rule in enumerate(self.rules(fresh=True), 1):
            if rule.id == rule_id:
                return self._view(position, rule)
        raise NotFound(f"recording rule {rule_id} not found")

    def rules(self, fresh: bool = False) -> list[Rule]:
        """The rules in evaluation order (cached for :data:`CACHE_SECONDS` unless ``fresh``)."""
        now = time.monotonic()
        with self._lock:
            cached = self._cached
        if not fresh and cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        with self._catalog.read() as session:
            rules = [
                _rule_of(r) for r in session.scalars(select(RecordingRule).order_by(RecordingRule.position))
            ]
        with self._lock:
            self._cached = (now, rules)
        return rules

    def _view(self, position: int, rule: Rule) -> dict[str, Any]:
        body = rule.to_json()
        body["position"] = position
        body["match"]["time_zone"] = rule.match.time_zone or self.site_time_zone
        return body

    # -- changing --------------------------------------------------------------------------------

    def create(self, principal: Principal, body: object) -> dict[str, Any]:
        require(principal, Action.RULES_MANAGE)
        rule, position = parse_rule(body, self.site_time_zone)
        with self._catalog.write() as session:
            rows = self._ordered(session)
            if len(rows) >= MAX_RULES:
                raise InvalidInput(f"at most {MAX_RULES} recording rules")
            self._check_references(session, [rule])
            now = datetime.now(UTC)
            row = RecordingRule(created_at=now)
            self._fill(row, rule, principal, now)
            order = list(rows)
            order.insert(self._index(position, len(order)), row)
            check_order([_rule_of(r) if r is not row else rule for r in order])
            session.add(row)
            self._renumber(order)
            session.flush()
            self._log.record_in(session, principal, "recording_rule_create", detail=self._detail(row))
            result = self._view(row.position, replace(rule, id=row.id))
        self._forget()
        return result

    def update(self, principal: Principal, rule_id: int, body: object) -> dict[str, Any]:
        """Replace a rule (every field; ``position`` moves it, left out keeps its place)."""
        require(principal, Action.RULES_MANAGE)
        rule, position = parse_rule(body, self.site_time_zone)
        with self._catalog.write() as session:
            rows = self._ordered(session)
            row = next((r for r in rows if r.id == rule_id), None)
            if row is None:
                raise NotFound(f"recording rule {rule_id} not found")
            self._check_references(session, [rule])
            order = [r for r in rows if r is not row]
            index = rows.index(row) if position is None else self._index(position, len(order))
            order.insert(index, row)
            rule = replace(rule, id=row.id)
            check_order([_rule_of(r) if r is not row else rule for r in order])
            self._fill(row, rule, principal, datetime.now(UTC))
            self._renumber(order)
            self._log.record_in(session, principal, "recording_rule_update", detail=self._detail(row))
            result = self._view(row.position, rule)
        self._forget()
        return result

    def delete(self, principal: Principal, rule_id: int) -> None:
        require(principal, Action.RULES_MANAGE)
        with self._catalog.write() as session:
            rows = self._ordered(session)
            row = next((r for r in rows if r.id == rule_id), None)
            if row is None:
                raise NotFound(f"recording rule {rule_id} not found")
            order = [r for r in rows if r is not row]
            check_order([_rule_of(r) for r in order])  # removing one never shadows another; kept for safety
            detail = f"rule={row.id} name={row.name!r} position={row.position} action={row.action}"
            session.delete(row)
            session.flush()
            self._renumber(order)
            self._log.record_in(session, principal, "recording_rule_delete", detail=detail)
        self._forget()

    @staticmethod
    def _ordered(session: Session) -> list[RecordingRule]:
        query = select(RecordingRule).order_by(RecordingRule.position, RecordingRule.id).with_for_update()
        return list(session.scalars(query))

    @staticmethod
    def _index(position: int | None, count: int) -> int:
        return count if position is None else min(position - 1, count)

    @staticmethod
    def _renumber(order: Sequence[RecordingRule]) -> None:
        for position, row in enumerate(order, 1):
            if row.position != position:
                row.position = position

    @staticmethod
    def _fill(row: RecordingRule, rule: Rule, principal: Principal, now: datetime) -> None:
        row.name = rule.name
        row.action = rule.action
        row.sample_percent = rule.sample_percent
        row.match = rule.match.to_json()
        row.set_labels = list(rule.set_labels)
        row.enabled = rule.enabled
        row.updated_at = now
        row.updated_by = principal.username
        if row.position is None:
            row.position = 0

    @staticmethod
    def _detail(row: RecordingRule) -> str:
        # Conditions as set (numbers are an operator's configuration, not a caller's data).
        return (
            f"rule={row.id} name={row.name!r} position={row.position} action={row.action}"
            + (f" sample_percent={row.sample_percent}" if row.sample_percent is not None else "")
            + f" enabled={str(bool(row.enabled)).lower()} match={row.match} set_labels={row.set_labels}"
        )

    @staticmethod
    def _check_references(session: Session, rules: Iterable[Rule]) -> None:
        for rule in rules:
            for kind, names, column in (
                ("agent", rule.match.agents, User.username),
                ("team", rule.match.teams, Team.name),
            ):
                if not names:
                    continue
                known = set(session.scalars(select(column).where(column.in_(sorted(names)))))
                missing = sorted(names - known)
                if missing:
                    raise InvalidInput(f"match.{kind}s: unknown {kind}(s) {', '.join(map(repr, missing))}")

    def _forget(self) -> None:
        with self._lock:
            self._cached = None

    # -- evaluating --------------------------------------------------------------------------------

    def decide(self, facts: CallFacts) -> Decision:
        return decide(self.rules(), facts, self.site_time_zone)

    def facts(
        self,
        started_at: datetime,
        session_key: str,
        agent_user_ids: Iterable[int],
        *,
        queue: str | None,
        direction: str | None,
        customer: str | None,
        labels: Iterable[str],
    ) -> CallFacts:
        """A call's facts, its agents' usernames, teams and must-record flags read from the catalogue."""
        ids = sorted(set(agent_user_ids))
        agents: set[str] = set()
        teams: set[str] = set()
        must: set[str] = set()
        if ids:
            with self._catalog.read() as session:
                query = select(User.username, Team.name, User.must_record).outerjoin(
                    Team, User.team_id == Team.id
                )
                for username, team, must_record in session.execute(query.where(User.id.in_(ids))):
                    agents.add(username)
                    if team:
                        teams.add(team)
                    if must_record:
                        must.add(username)
        return CallFacts(
            started_at,
            session_key,
            frozenset(agents),
            frozenset(teams),
            queue,
            direction,
            customer,
            frozenset(labels),
            frozenset(must),
        )

    def test(self, principal: Principal, body: object) -> dict[str, Any]:
        """``POST /recording-rules/test``: which rule and action a described call would get."""
        require(principal, Action.RULES_VIEW)
        facts = self._described(body)
        decision = self.decide_fresh(facts)
        answer = decision.to_json()
        if decision.rule_id is not None:
            rules = self.rules()
            answer["position"] = next((p for p, r in enumerate(rules, 1) if r.id == decision.rule_id), None)
        return answer

    def decide_fresh(self, facts: CallFacts) -> Decision:
        return decide(self.rules(fresh=True), facts, self.site_time_zone)

    def _described(self, body: object) -> CallFacts:
        if not isinstance(body, dict):
            raise InvalidInput("describe the call as a JSON object")
        known = ("agent", "agents", "team", "queue", "direction", "customer", "labels", "at", "call_id")
        unknown = sorted(set(body) - set(known))
        if unknown:
            raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(known)}")
        agents = body.get("agents") or ([body["agent"]] if body.get("agent") else [])
        if not isinstance(agents, list) or not all(isinstance(a, str) for a in agents):
            raise InvalidInput("agents must be a list of usernames")
        at = _instant(body.get("at"))
        with self._catalog.read() as session:
            ids = list(session.scalars(select(User.id).where(User.username.in_(agents)))) if agents else []
            if len(ids) != len(set(agents)):
                known_names = set(session.scalars(select(User.username).where(User.username.in_(agents))))
                raise InvalidInput(f"unknown agent(s) {', '.join(sorted(set(agents) - known_names))}")
            team = body.get("team")
            if team is not None and session.scalar(select(func.count()).where(Team.name == team)) == 0:
                raise InvalidInput(f"unknown team {team!r}")
        described = parse_match(
            {
                "queues": body.get("queue"),
                "directions": body.get("direction"),
                "customers": body.get("customer"),
                "labels": body.get("labels"),
            },
            self.site_time_zone,
        )
        facts = self.facts(
            at,
            str(body.get("call_id") or ""),
            ids,
            queue=next(iter(described.queues), None),
            direction=next(iter(described.directions), None),
            customer=next(iter(described.customers), None),
            labels=described.labels,
        )
        if team is not None:
            facts = replace(facts, teams=facts.teams | {team})
        return facts


def _instant(raw: object) -> datetime:
    if raw is None:
        return datetime.now(UTC)
    if not isinstance(raw, str):
        raise InvalidInput("at must be an ISO 8601 time with its offset, e.g. 2026-03-02T09:30:00+01:00")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"at: {raw!r} is not an ISO 8601 time") from None
    if value.tzinfo is None:
        raise InvalidInput("at needs its UTC offset (or Z)")
    return value
