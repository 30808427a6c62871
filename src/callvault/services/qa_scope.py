"""Scope of quality-management rows: the evaluated call's team and agent, by the access table.

Evaluations, clips and coaching items copy the team and agent of their call,
so the ``qa.*`` rows of :data:`callvault.services.access.POLICY` apply to them
the way ``recording.*`` rows apply to recordings: ``team`` means the caller's
team, ``own`` the caller's own calls. Out of scope reads as NotFound, like a
recording.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from callvault.db.models import Recording, Team, User
from callvault.errors import Conflict, InvalidInput, KeyUnavailable
from callvault.services.access import Action, Principal, Scope, check_recording, require
from callvault.services.recordings import FINAL_STATUSES

# Row ids are 32-bit integers in the catalog; a larger number names no row (and would be a
# driver error on PostgreSQL, not a 404).
MAX_ROW_ID = 2**31 - 1


def is_row_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_ROW_ID


def in_scope(principal: Principal, action: Action, team_id: int | None, agent_user_id: int | None) -> bool:
    scope = require(principal, action)
    if scope is Scope.ALL:
        return True
    if scope is Scope.TEAM:
        return principal.team_id is not None and team_id == principal.team_id
    return principal.user_id is not None and agent_user_id == principal.user_id


def condition(
    principal: Principal,
    action: Action,
    team_column: InstrumentedAttribute[Any],
    agent_column: InstrumentedAttribute[Any],
) -> ColumnElement[bool]:
    """SQL form of :func:`in_scope` over a table's team and agent columns."""
    scope = require(principal, action)
    if scope is Scope.ALL:
        return true()
    if scope is Scope.TEAM:
        return team_column == principal.team_id if principal.team_id is not None else false()
    return agent_column == principal.user_id if principal.user_id is not None else false()


def evaluable_recording(
    session: Session, principal: Principal, action: Action, recording_id: Any
) -> Recording:
    """A finished recording with its audio, in ``principal``'s scope for ``action``."""
    if not isinstance(recording_id, str) or not 1 <= len(recording_id) <= 64:
        raise InvalidInput("recording_id must be a recording's id")
    recording = check_recording(principal, action, session.get(Recording, recording_id))
    if recording.status == "recording":
        raise Conflict("the call is still being recorded; evaluate it once it has ended")
    if recording.deleted_at is not None or recording.key_destroyed_at is not None:
        raise KeyUnavailable("the recording's audio has been destroyed")
    if not recording.object_key or recording.status not in FINAL_STATUSES:
        # Calls a recording rule left unrecorded (not_recorded, not_kept) are catalogued without audio.
        raise Conflict(f"the call has no audio to evaluate (status {recording.status})")
    return recording


def user_id_named(session: Session, username: Any, what: str) -> User:
    if not isinstance(username, str) or not username.strip():
        raise InvalidInput(f"{what} must be a username")
    user = session.scalar(select(User).where(User.username == username.strip()))
    if user is None:
        raise InvalidInput(f"{what}: no user named {username.strip()!r}")
    return user


def team_named(session: Session, name: Any, what: str) -> int:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"{what} must be a team name")
    team_id = session.scalar(select(Team.id).where(Team.name == name.strip()))
    if team_id is None:
        raise InvalidInput(f"{what}: no team named {name.strip()!r}")
    return int(team_id)


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they are UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)
