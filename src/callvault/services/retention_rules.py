"""Retention policies as rules: which policies match a recording, and when it is due.

A policy matches when every condition it names matches (a condition lists
accepted values; an empty or missing one accepts anything). A recording is due
when the **longest** ``keep_days`` among the policies it matches has passed
since it started: a regulated label's seven years beat a six-month default.
A recording no policy matches falls back to ``CALLVAULT_RETENTION_DEFAULT_DAYS``
(empty: kept for ever).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from callvault.db.compliance_models import RetentionPolicy
from callvault.db.consent_models import CONSENT_STATES
from callvault.db.models import Recording, RecordingTag, Team
from callvault.errors import InvalidInput

# Condition name in the API → what of a recording it compares.
MATCH_KEYS = ("teams", "queues", "directions", "tags", "statuses", "labels", "consent_states")
FINAL_STATUSES = ("complete", "incomplete", "interrupted")
MAX_KEEP_DAYS = 36500
_MAX_VALUES = 200
_MAX_VALUE_LEN = 120


@dataclass(frozen=True)
class PolicyRule:
    id: int
    name: str
    keep_days: int
    match: dict[str, frozenset[str]]
    legal_obligation: bool

    @classmethod
    def from_row(cls, row: RetentionPolicy) -> PolicyRule:
        match = {k: frozenset(v) for k, v in row.match.items() if v}
        return cls(row.id, row.name, row.keep_days, match, row.legal_obligation)


@dataclass(frozen=True)
class RecordingFacts:
    """What retention conditions compare, for one recording."""

    id: str
    started_at: datetime
    size: int
    values: dict[str, frozenset[str]]


def parse_match(raw: object) -> dict[str, list[str]]:
    """Validated, normalised match conditions (sorted, de-duplicated lists)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidInput("match must be an object")
    unknown = sorted(set(raw) - set(MATCH_KEYS))
    if unknown:
        raise InvalidInput(
            f"match: unknown condition(s) {', '.join(unknown)}; known: {', '.join(MATCH_KEYS)}"
        )
    match: dict[str, list[str]] = {}
    for key, values in raw.items():
        if values is None:
            continue
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
            raise InvalidInput(f"match.{key} must be a list of non-empty strings")
        if len(values) > _MAX_VALUES or any(len(v) > _MAX_VALUE_LEN for v in values):
            raise InvalidInput(f"match.{key}: at most {_MAX_VALUES} values of {_MAX_VALUE_LEN} characters")
        cleaned = sorted({v.strip() for v in values})
        if key == "directions" and not set(cleaned) <= {"inbound", "outbound"}:
            raise InvalidInput("match.directions: each must be inbound or outbound")
        if key == "statuses" and not set(cleaned) <= set(FINAL_STATUSES):
            raise InvalidInput(f"match.statuses: each must be one of {', '.join(FINAL_STATUSES)}")
        if key == "consent_states" and not set(cleaned) <= set(CONSENT_STATES):
            raise InvalidInput(f"match.consent_states: each must be one of {', '.join(CONSENT_STATES)}")
        if cleaned:
            match[key] = cleaned
    return match


def parse_keep_days(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_KEEP_DAYS:
        raise InvalidInput(f"keep_days must be a whole number of days from 1 to {MAX_KEEP_DAYS}")
    return raw


def matches(rule: PolicyRule, facts: RecordingFacts) -> bool:
    return all(accepted & facts.values.get(key, frozenset()) for key, accepted in rule.match.items())


def governing(rules: list[PolicyRule], facts: RecordingFacts) -> PolicyRule | None:
    """The matching policy with the longest keep_days (ties: the lowest id, the oldest policy)."""
    best: PolicyRule | None = None
    for rule in rules:
        if matches(rule, facts) and (best is None or rule.keep_days > best.keep_days):
            best = rule
    return best


def due_at(
    rules: list[PolicyRule], facts: RecordingFacts, default_days: int | None
) -> tuple[datetime | None, str | None]:
    """When the recording may go and under which policy (None, None: kept for ever)."""
    rule = governing(rules, facts)
    if rule is not None:
        return facts.started_at + timedelta(days=rule.keep_days), rule.name
    if default_days is None:
        return None, None
    return facts.started_at + timedelta(days=default_days), "default"


def obligation_until(rules: list[PolicyRule], facts: RecordingFacts) -> tuple[datetime, str] | None:
    """The latest end of a ``legal_obligation`` policy that keeps this recording, if any."""
    kept = [
        (facts.started_at + timedelta(days=r.keep_days), r.name)
        for r in rules
        if r.legal_obligation and matches(r, facts)
    ]
    return max(kept) if kept else None


def load_rules(session: Session) -> list[PolicyRule]:
    rows = session.scalars(select(RetentionPolicy).order_by(RetentionPolicy.id))
    return [PolicyRule.from_row(row) for row in rows]


def load_facts(session: Session, where: ColumnElement[bool] | None = None) -> list[RecordingFacts]:
    """Facts of every sealed, not yet deleted recording (narrowed by ``where``)."""
    query = (
        select(
            Recording.id,
            Recording.started_at,
            Recording.object_size,
            Team.name,
            Recording.queue,
            Recording.direction,
            Recording.status,
            Recording.labels,
            Recording.consent_state,
        )
        .outerjoin(Team, Team.id == Recording.team_id)
        .where(Recording.deleted_at.is_(None), Recording.status.in_(FINAL_STATUSES))
    )
    if where is not None:
        query = query.where(where)
    rows = session.execute(query).all()
    tags: dict[str, set[str]] = defaultdict(set)
    if rows:
        tag_query = select(RecordingTag.recording_id, RecordingTag.tag)
        if where is not None:
            tag_query = tag_query.join(Recording, Recording.id == RecordingTag.recording_id).where(where)
        for recording_id, tag in session.execute(tag_query):
            tags[recording_id].add(tag)
    return [_facts(row, tags.get(row[0], set())) for row in rows]


def _facts(row: Any, tags: set[str]) -> RecordingFacts:
    rid, started, size, team, queue, direction, status, labels, consent = row
    values = {
        "teams": frozenset([team] if team else []),
        "queues": frozenset([queue] if queue else []),
        "directions": frozenset([direction] if direction else []),
        "tags": frozenset(tags),
        "statuses": frozenset([status]),
        "labels": frozenset(labels or []),
        "consent_states": frozenset([consent] if consent else []),
    }
    aware = started if started.tzinfo else started.replace(tzinfo=UTC)
    return RecordingFacts(rid, aware, int(size or 0), values)
