"""Access events: every search, view, playback and download, append-only.

The table refuses UPDATE and DELETE at the database level (triggers in the
initial migration); a later release chains the rows into a tamper-evident log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import AccessEvent
from callvault.services.access import Action, Principal, require


@dataclass(frozen=True)
class AccessEventView:
    id: int
    at: datetime
    username: str | None
    action: str
    recording_id: str | None
    detail: str | None
    remote_addr: str | None
    outcome: str


class AccessLog:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def record(
        self,
        principal: Principal,
        action: str,
        recording_id: str | None = None,
        detail: str | None = None,
        outcome: str = "ok",
    ) -> None:
        with self._catalog.write() as session:
            session.add(
                AccessEvent(
                    at=datetime.now(UTC),
                    user_id=principal.user_id,
                    username=principal.username,
                    action=action,
                    recording_id=recording_id,
                    detail=(detail or "")[:2000] or None,
                    remote_addr=principal.remote_addr,
                    outcome=outcome,
                )
            )

    def list(
        self, principal: Principal, recording_id: str | None = None, limit: int = 100
    ) -> list[AccessEventView]:
        require(principal, Action.AUDIT_READ)
        query = select(AccessEvent).order_by(AccessEvent.id.desc()).limit(max(1, min(limit, 1000)))
        if recording_id:
            query = query.where(AccessEvent.recording_id == recording_id)
        with self._catalog.read() as session:
            return [
                AccessEventView(
                    e.id, e.at, e.username, e.action, e.recording_id, e.detail, e.remote_addr, e.outcome
                )
                for e in session.scalars(query)
            ]
