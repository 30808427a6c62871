"""Legal hold criteria: parse what a case names, and turn it into one SQL condition.

Criteria kinds combine with AND, values within a kind with OR: ``customers``
(numbers in any format, normalised to E.164, matched against the customer
column and every participant's number), ``agents`` (usernames or SIP
identities), ``teams`` (names), ``from``/``to`` (call start), ``call_ids``
(SIP Call-IDs, vendor ids or callvault call ids) and ``recording_ids``. The
condition is evaluated whenever a deletion is considered, so a recording sealed
after the hold was created is held as soon as it matches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import Session

from callvault.db.models import CallIdentifier, Participant, Recording, Team
from callvault.errors import InvalidInput
from callvault.services.directory import AgentDirectory
from callvault.services.phone import normalise_number

KINDS = ("customers", "agents", "teams", "from", "to", "call_ids", "recording_ids")
_LIST_KINDS = ("customers", "agents", "teams", "call_ids", "recording_ids")
_MAX_VALUES = 10000


def parse_criteria(
    raw: object, session: Session, directory: AgentDirectory, region: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(criteria as shown, resolved criteria used for matching)``; InvalidInput names the problem."""
    if not isinstance(raw, dict) or not raw:
        raise InvalidInput("criteria must be a non-empty object")
    unknown = sorted(set(raw) - set(KINDS))
    if unknown:
        raise InvalidInput(f"criteria: unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    shown: dict[str, Any] = {}
    for kind in _LIST_KINDS:
        values = _string_list(raw.get(kind), kind)
        if values:
            shown[kind] = values
    resolved: dict[str, Any] = {}
    if "customers" in shown:
        numbers = []
        for value in shown["customers"]:
            number = normalise_number(value, region)
            if number is None:
                raise InvalidInput(f"criteria.customers: {value[:40]!r} is not a phone number")
            numbers.append(number)
        shown["customers"] = resolved["customers"] = sorted(set(numbers))
    if "agents" in shown:
        resolved["agents"] = [_agent(directory, name) for name in shown["agents"]]
    if "teams" in shown:
        resolved["teams"] = [_team(session, name) for name in shown["teams"]]
    for kind in ("call_ids", "recording_ids"):
        if kind in shown:
            resolved[kind] = shown[kind]
    for kind in ("from", "to"):
        if raw.get(kind) is not None:
            shown[kind] = resolved[kind] = _time(raw[kind], kind)
    if "from" in resolved and "to" in resolved and resolved["from"] > resolved["to"]:
        raise InvalidInput("criteria: 'from' is after 'to'")
    if not resolved:
        raise InvalidInput("criteria must name at least one customer, agent, team, time, call or recording")
    return shown, resolved


def condition(resolved: dict[str, Any]) -> ColumnElement[bool]:
    """SQL condition on ``recordings`` that is true for every recording the hold covers."""
    parts: list[ColumnElement[bool]] = []
    if "customers" in resolved:
        numbers = resolved["customers"]
        by_participant = select(Participant.call_id).where(Participant.number.in_(numbers))
        parts.append(or_(Recording.customer_number.in_(numbers), Recording.call_id.in_(by_participant)))
    if "agents" in resolved:
        parts.append(Recording.agent_user_id.in_(resolved["agents"]))
    if "teams" in resolved:
        parts.append(Recording.team_id.in_(resolved["teams"]))
    if "from" in resolved:
        parts.append(Recording.started_at >= datetime.fromisoformat(resolved["from"]))
    if "to" in resolved:
        parts.append(Recording.started_at <= datetime.fromisoformat(resolved["to"]))
    if "call_ids" in resolved:
        ids = resolved["call_ids"]
        by_identifier = select(CallIdentifier.call_id).where(CallIdentifier.value.in_(ids))
        parts.append(or_(Recording.call_id.in_(ids), Recording.call_id.in_(by_identifier)))
    if "recording_ids" in resolved:
        parts.append(Recording.id.in_(resolved["recording_ids"]))
    return and_(true(), *parts)


def _string_list(value: object, kind: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidInput(f"criteria.{kind} must be a list of non-empty strings")
    if len(value) > _MAX_VALUES or any(len(v) > 255 for v in value):
        raise InvalidInput(f"criteria.{kind}: at most {_MAX_VALUES} values of 255 characters")
    return sorted({v.strip() for v in value})


def _agent(directory: AgentDirectory, name: str) -> int:
    user_id = directory.resolve_user(name)
    if user_id is None:
        raise InvalidInput(f"criteria.agents: no user or SIP identity {name[:60]!r}")
    return user_id


def _team(session: Session, name: str) -> int:
    team_id = session.scalar(select(Team.id).where(Team.name == name))
    if team_id is None:
        raise InvalidInput(f"criteria.teams: no team {name[:60]!r}")
    return team_id


def _time(value: object, kind: str) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"criteria.{kind} must be an ISO 8601 time string")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"criteria.{kind}: {value[:40]!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise InvalidInput(f"criteria.{kind} must include a time zone")
    return parsed.isoformat()
