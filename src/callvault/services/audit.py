"""Access events: every search, view, playback and download, append-only.

The table refuses UPDATE and DELETE at the database level (triggers in the
initial migration), and every row is chained into the tamper-evident audit log
through its one append path (:class:`callvault.services.audit_log.AuditLog`).
Refused attempts land here too: failed logins and lock-outs (with the username
tried, never the password), and every 403 and out-of-scope 404 of the API.

An interface that wants to record refusals the services did not record
themselves opens a :func:`refusal_scope` per request: :meth:`AccessLog.record`
marks it whenever it writes a non-``ok`` outcome, so a refusal is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.audit_chain import AuditBody
from callvault.db.catalog import Catalog
from callvault.db.models import AccessEvent
from callvault.services.access import Action, Principal, require
from callvault.services.audit_log import AuditLog


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


@dataclass
class RefusalScope:
    """Whether a refusal was already written to the trail during one request."""

    recorded: bool = False


# A mutable marker rather than a flag in the variable itself: worker threads
# get a copy of the context, and must be able to tell the request's handler.
_refusals: ContextVar[RefusalScope | None] = ContextVar("callvault_refusals", default=None)


def refusal_scope() -> RefusalScope:
    """Start tracking refusals for the current request (call once per request)."""
    scope = RefusalScope()
    _refusals.set(scope)
    return scope


def current_refusals() -> RefusalScope | None:
    return _refusals.get()


class AccessLog:
    def __init__(self, catalog: Catalog, audit: AuditLog | None = None) -> None:
        self._catalog = catalog
        self.audit = audit or AuditLog(catalog)
        self._watchers: list[Callable[[Principal, str, str | None, str], None]] = []

    def watch(self, watcher: Callable[[Principal, str, str | None, str], None]) -> None:
        """Call ``watcher(principal, action, recording_id, outcome)`` after each event of a principal
        is committed (usage monitoring); a watcher must not raise."""
        self._watchers.append(watcher)

    def record(
        self,
        principal: Principal,
        action: str,
        recording_id: str | None = None,
        detail: str | None = None,
        outcome: str = "ok",
    ) -> None:
        self.record_event(
            action,
            outcome,
            username=principal.username,
            user_id=principal.user_id,
            remote_addr=principal.remote_addr,
            recording_id=recording_id,
            detail=detail,
        )
        for watcher in self._watchers:
            watcher(principal, action, recording_id, outcome)

    def record_many(
        self, principal: Principal, action: str, entries: list[tuple[str | None, str | None]]
    ) -> None:
        """Write one event per ``(recording_id, detail)`` in one transaction (bulk deletions), chained."""
        if not entries:
            return
        joined = self._catalog.in_write()
        if joined is not None:
            self.record_many_in(joined, principal, action, entries)
            return
        with self._catalog.write() as session:
            self.record_many_in(session, principal, action, entries)

    def record_event(
        self,
        action: str,
        outcome: str,
        *,
        username: str | None,
        user_id: int | None = None,
        remote_addr: str | None = None,
        recording_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Write one event; also for callers that are not (yet) authenticated, e.g. failed logins."""
        body = AuditBody(
            at=datetime.now(UTC),
            user_id=user_id,
            username=username,
            action=action,
            recording_id=recording_id,
            detail=detail,
            remote_addr=remote_addr,
            outcome=outcome,
        )
        joined = self._catalog.in_write()
        if joined is not None:
            # Called from inside a write on this thread (an event subscriber): a second
            # write would wait forever for SQLite's lock; the entry commits with that work.
            self.audit.append(joined, body)
        else:
            with self._catalog.write() as session:
                self.audit.append(session, body)
        if outcome != "ok":
            scope = _refusals.get()
            if scope is not None:
                scope.recorded = True

    def record_in(
        self,
        session: Session,
        principal: Principal,
        action: str,
        recording_id: str | None = None,
        detail: str | None = None,
        outcome: str = "ok",
    ) -> None:
        """Write one event inside the caller's write transaction (it commits or rolls back with it)."""
        self.record_many_in(session, principal, action, [(recording_id, detail)], outcome)

    def record_many_in(
        self,
        session: Session,
        principal: Principal,
        action: str,
        items: list[tuple[str | None, str | None]],
        outcome: str = "ok",
    ) -> None:
        """One event per ``(recording_id, detail)``, chained under one lock (bulk deletions)."""
        at = datetime.now(UTC)
        self.audit.append_many(
            session,
            [
                AuditBody(
                    at=at,
                    user_id=principal.user_id,
                    username=principal.username,
                    action=action,
                    recording_id=recording_id,
                    detail=detail,
                    remote_addr=principal.remote_addr,
                    outcome=outcome,
                )
                for recording_id, detail in items
            ],
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
