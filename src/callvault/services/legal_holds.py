"""Legal holds: freeze every recording of a case, and release only with two people.

A hold covers every recording its criteria match (:mod:`callvault.services.hold_criteria`),
including recordings sealed after it was created: matching happens whenever a
deletion is considered (:mod:`callvault.services.deletion_guard`). There is no
limit on holds or held recordings. Releasing takes two steps by two different
compliance officers or admins; both are audited, and ``hold.released`` is
published once the second commits.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from callvault.db.catalog import Catalog
from callvault.db.compliance_models import LegalHold
from callvault.db.models import Recording
from callvault.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.deletion_guard import ACTIVE
from callvault.services.directory import AgentDirectory
from callvault.services.events import EventBus
from callvault.services.hold_criteria import condition, parse_criteria
from callvault.services.manifest import iso


class LegalHoldService:
    def __init__(
        self,
        catalog: Catalog,
        directory: AgentDirectory,
        access_log: AccessLog,
        events: EventBus,
        region: str,
    ) -> None:
        self._catalog = catalog
        self._directory = directory
        self._log = access_log
        self._events = events
        self._region = region

    def create(self, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
        require(principal, Action.HOLD_MANAGE)
        unknown = sorted(set(body) - {"name", "reason", "criteria"})
        if unknown:
            raise InvalidInput(f"unknown field(s): {', '.join(unknown)}")
        name, reason = body.get("name"), body.get("reason")
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise InvalidInput("name (the case) must be a non-empty string of at most 200 characters")
        if not isinstance(reason, str) or not reason.strip():
            raise InvalidInput("reason must be a non-empty string")
        with self._catalog.write() as session:
            shown, resolved = parse_criteria(body.get("criteria"), session, self._directory, self._region)
            for other in session.scalars(select(LegalHold).where(LegalHold.status.in_(ACTIVE))):
                if other.name == name.strip():
                    raise Conflict(f"an active legal hold named {other.name!r} already exists")
                if other.resolved == resolved:
                    raise Conflict(f"active legal hold {other.name!r} already has exactly these criteria")
            hold = LegalHold(
                name=name.strip(),
                reason=reason.strip()[:4000],
                criteria=shown,
                resolved=resolved,
                status="active",
                created_at=datetime.now(UTC),
                created_by=principal.username,
            )
            session.add(hold)
            session.flush()
            view = self._view(session, hold)
        self._log.record(principal, "hold_create", detail=f"{hold.id} {hold.name}: {view['held']} held")
        self._events.publish("hold.created", {"id": hold.id, "name": hold.name, "held": view["held"]})
        return view

    def list(self, principal: Principal, include_released: bool = True) -> list[dict[str, Any]]:
        require(principal, Action.HOLD_MANAGE)
        with self._catalog.read() as session:
            query = select(LegalHold).order_by(LegalHold.id)
            if not include_released:
                query = query.where(LegalHold.status.in_(ACTIVE))
            return [self._view(session, h) for h in session.scalars(query)]

    def get(self, principal: Principal, hold_id: int) -> dict[str, Any]:
        require(principal, Action.HOLD_MANAGE)
        with self._catalog.read() as session:
            return self._view(session, _hold(session, hold_id))

    def request_release(self, principal: Principal, hold_id: int) -> dict[str, Any]:
        """First person: ask for the release (the hold stays in force)."""
        require(principal, Action.HOLD_MANAGE)
        with self._catalog.write() as session:
            hold = _hold(session, hold_id, lock=True)
            if hold.status == "released":
                raise Conflict(f"legal hold {hold.name!r} is already released")
            if hold.status == "release_pending":
                raise Conflict(
                    f"release of {hold.name!r} was already requested by {hold.release_requested_by}"
                )
            hold.status = "release_pending"
            hold.release_requested_by = principal.username
            hold.release_requested_at = datetime.now(UTC)
            view = self._view(session, hold)
        self._log.record(principal, "hold_release_request", detail=f"{hold_id} {hold.name}")
        return view

    def approve_release(self, principal: Principal, hold_id: int) -> dict[str, Any]:
        """Second person: approve; only then do the recordings become deletable."""
        require(principal, Action.HOLD_MANAGE)
        with self._catalog.write() as session:
            hold = _hold(session, hold_id, lock=True)
            if hold.status == "released":
                raise Conflict(f"legal hold {hold.name!r} is already released")
            if hold.status != "release_pending":
                raise Conflict(f"release of {hold.name!r} has not been requested; request it first")
            own_request = hold.release_requested_by == principal.username
            if not own_request:
                hold.status = "released"
                hold.released_by = principal.username
                hold.released_at = datetime.now(UTC)
            view = self._view(session, hold)
        if own_request:
            # Written after the transaction: the audit trail has its own (SQLite: the one) writer.
            self._log.record(
                principal, "hold_release_approve", detail=f"{hold_id}: own request", outcome="forbidden"
            )
            raise PermissionDenied("a release must be approved by someone other than who requested it")
        self._log.record(principal, "hold_release_approve", detail=f"{hold_id} {hold.name}")
        self._events.publish("hold.released", {"id": hold_id, "name": hold.name})
        return view

    def _view(self, session: Any, hold: LegalHold) -> dict[str, Any]:
        held = session.scalar(
            select(func.count())
            .select_from(Recording)
            .where(condition(hold.resolved), Recording.deleted_at.is_(None))
        )
        return {
            "id": hold.id,
            "name": hold.name,
            "reason": hold.reason,
            "criteria": hold.criteria,
            "status": hold.status,
            "held": int(held or 0),
            "created_at": iso(hold.created_at),
            "created_by": hold.created_by,
            "release_requested_by": hold.release_requested_by,
            "release_requested_at": iso(hold.release_requested_at),
            "released_by": hold.released_by,
            "released_at": iso(hold.released_at),
        }


def _hold(session: Any, hold_id: int, lock: bool = False) -> LegalHold:
    hold: LegalHold | None = session.get(LegalHold, hold_id, with_for_update=lock)
    if hold is None:
        raise NotFound(f"legal hold {hold_id} not found")
    return hold
