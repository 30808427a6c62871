"""Auditors' view of the audit log: filter by user, action, recording and time; page; CSV.

Reading the log is itself an audited event (``audit_query``), so who looked at
whose trail is on the trail too.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select

from callvault.db.catalog import Catalog
from callvault.db.models import AccessEvent
from callvault.db.seal_chain import utc_iso
from callvault.errors import InvalidInput
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog

MAX_PAGE = 1000
COLUMNS = (
    "seq",
    "at",
    "username",
    "action",
    "recording_id",
    "outcome",
    "remote_addr",
    "detail",
    "entry_hash",
)


@dataclass
class AuditQuery:
    user: str | None = None
    action: str | None = None
    recording_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0

    def validate(self) -> None:
        if not 1 <= self.limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        if not 0 <= self.offset <= 10**12:
            raise InvalidInput("offset must be between 0 and 10^12")
        for value in (self.since, self.until):
            if value is not None and value.tzinfo is None:
                raise InvalidInput("'from' and 'to' must include a time zone")
        if self.since and self.until and self.since > self.until:
            raise InvalidInput("'from' is after 'to'")

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in vars(self).items() if v is not None and k not in ("limit", "offset")]
        return " ".join(parts) or "all"


def _conditions(query: AuditQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if query.user:
        conditions.append(AccessEvent.username == query.user)
    if query.action:
        conditions.append(AccessEvent.action == query.action)
    if query.recording_id:
        conditions.append(AccessEvent.recording_id == query.recording_id)
    if query.since:
        conditions.append(AccessEvent.at >= query.since.astimezone(UTC))
    if query.until:
        conditions.append(AccessEvent.at < query.until.astimezone(UTC))
    return conditions


def _row(event: AccessEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": utc_iso(event.at),
        "username": event.username,
        "action": event.action,
        "recording_id": event.recording_id,
        "outcome": event.outcome,
        "remote_addr": event.remote_addr,
        "detail": event.detail,
        "entry_hash": event.entry_hash,
    }


class AuditEvents:
    def __init__(self, catalog: Catalog, access_log: AccessLog) -> None:
        self._catalog = catalog
        self._log = access_log

    def search(self, principal: Principal, query: AuditQuery) -> tuple[list[dict[str, Any]], int]:
        """Matching events, newest first, and how many match in all."""
        require(principal, Action.AUDIT_READ)
        query.validate()
        conditions = _conditions(query)
        with self._catalog.read() as session:
            total = session.scalar(select(func.count()).select_from(AccessEvent).where(*conditions)) or 0
            rows = session.scalars(
                select(AccessEvent)
                .where(*conditions)
                .order_by(AccessEvent.seq.desc(), AccessEvent.id.desc())
                .limit(query.limit)
                .offset(query.offset)
            ).all()
            items = [_row(r) for r in rows]
        self._log.record(principal, "audit_query", query.recording_id, detail=query.describe())
        return items, int(total)


def to_csv(items: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    for item in items:
        # A cell starting with = + - @ is a formula to spreadsheets: quote it as text.
        writer.writerow({k: _safe_cell(item[k]) for k in COLUMNS})
    return buffer.getvalue()


def _safe_cell(value: object) -> object:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
