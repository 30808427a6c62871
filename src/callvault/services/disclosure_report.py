"""Disclosure state of recordings: the part of a recording's view, the search filter, and the report.

The report lists the calls of a period that needed the recording
announcement and where it was not heard (check status ``missing``), oldest
first, with the counts of every state in the same period so the rate can be
read at a glance. It is a compliance view: admins and compliance officers,
within their recording scope, and every run is in the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.disclosure_models import DISCLOSURE_STATES, DisclosureCheck
from callvault.db.models import Recording, User
from callvault.errors import InvalidInput
from callvault.services.access import Action, Principal, recording_scope
from callvault.services.audit import AccessLog
from callvault.services.manifest import iso

MAX_PAGE = 1000


def disclosure_view(session: Session, recording_id: str) -> dict[str, Any] | None:
    """A recording's disclosure state for its API view; None when it was never checked."""
    check = session.get(DisclosureCheck, recording_id)
    return None if check is None else _view(check)


def disclosure_views(session: Session, recording_ids: list[str]) -> dict[str, dict[str, Any]]:
    """:func:`disclosure_view` of many recordings in one query (a search page); unchecked ones absent."""
    if not recording_ids:
        return {}
    checks = session.scalars(select(DisclosureCheck).where(DisclosureCheck.recording_id.in_(recording_ids)))
    return {check.recording_id: _view(check) for check in checks}


def _view(check: DisclosureCheck) -> dict[str, Any]:
    return {
        "status": check.status,
        "offset_seconds": check.offset_seconds,
        "channel": check.channel,
        "announcement": check.announcement_name,
        "score": check.score,
        "requirement": check.requirement,
        "window_seconds": check.window_seconds,
    }


def disclosure_condition(status: str) -> ColumnElement[bool]:
    """Search condition: recordings whose check has ``status``."""
    if status not in DISCLOSURE_STATES:
        raise InvalidInput(f"disclosure must be one of {', '.join(DISCLOSURE_STATES)}")
    return Recording.id.in_(select(DisclosureCheck.recording_id).where(DisclosureCheck.status == status))


@dataclass(frozen=True)
class Period:
    started_from: datetime | None = None
    started_to: datetime | None = None

    def validate(self) -> None:
        for value in (self.started_from, self.started_to):
            if value is not None and value.tzinfo is None:
                raise InvalidInput("from and to must include a time zone, e.g. 2026-01-31T00:00:00Z")
        if self.started_from and self.started_to and self.started_from > self.started_to:
            raise InvalidInput("'from' is after 'to'")

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.started_from is not None:
            found.append(DisclosureCheck.started_at >= self.started_from.astimezone(UTC))
        if self.started_to is not None:
            found.append(DisclosureCheck.started_at < self.started_to.astimezone(UTC))
        return found


class DisclosureReport:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def missing(
        self, principal: Principal, period: Period, limit: int = 100, offset: int = 0
    ) -> dict[str, Any]:
        """Calls of ``period`` that needed a disclosure and lack a verified one, with the period's counts."""
        scope = recording_scope(principal, Action.DISCLOSURE_REPORT)
        period.validate()
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}, offset 0 or more")
        within = [scope, *period.conditions()]
        joined = select(DisclosureCheck, Recording).join(
            Recording, Recording.id == DisclosureCheck.recording_id
        )
        with self._catalog.read() as session:
            counted = session.execute(
                select(DisclosureCheck.status, func.count())
                .join(Recording, Recording.id == DisclosureCheck.recording_id)
                .where(*within)
                .group_by(DisclosureCheck.status)
            )
            counts = {state: 0 for state in DISCLOSURE_STATES} | {s: int(n) for s, n in counted}
            rows = session.execute(
                joined.where(DisclosureCheck.status == "missing", *within)
                .order_by(DisclosureCheck.started_at, DisclosureCheck.recording_id)
                .limit(limit)
                .offset(offset)
            ).all()
            items = [_item(session, check, recording) for check, recording in rows]
        self._log.record(
            principal,
            "disclosure_report",
            detail=f"from={iso(period.started_from)} to={iso(period.started_to)} missing={counts['missing']}",
        )
        return {
            "from": iso(period.started_from),
            "to": iso(period.started_to),
            "counts": counts,
            "total": counts["missing"],
            "limit": limit,
            "offset": offset,
            "items": items,
        }


def _item(session: Session, check: DisclosureCheck, recording: Recording) -> dict[str, Any]:
    agent = session.get(User, recording.agent_user_id) if recording.agent_user_id else None
    return {
        "recording_id": recording.id,
        "started_at": iso(check.started_at),
        "status": recording.status,
        "duration": recording.duration_seconds,
        "direction": recording.direction,
        "queue": recording.queue,
        "customer_number": recording.customer_number,
        "agent": agent.username if agent else None,
        "requirement": check.requirement,
        "best_score": check.score,
        "window_seconds": check.window_seconds,
        "checked_at": iso(check.checked_at),
    }
