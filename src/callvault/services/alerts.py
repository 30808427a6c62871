"""Alerts: the one way anything tells compliance officers "look at this".

An alert has a ``kind`` and, depending on it, a user (usage limits: plays,
downloads and exports per hour, see :mod:`callvault.services.usage_monitor`)
or a recording (a must-record call that was not recorded, or not recorded
whole). Raising one writes, in one transaction, a row in ``alerts``
(``GET /api/v1/alerts``), an audit entry ``alert_raised`` and the domain event
``alert.raised`` (webhooks; the outbox row commits with the alert or not at
all); once committed, the Prometheus counter ``callvault_alerts_total{kind}``
counts it. Raising is serialised with audit appends (the chain's lock), so
two threads noticing the same thing raise one alert, not two: an alert is not
raised again for the same kind and subject (user, or recording) within
``once_within`` (a recording's: ever).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import Alert
from callvault.db.seal_chain import utc_iso
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.audit_log import lock_chain
from callvault.services.events import EventBus

log = logging.getLogger(__name__)

ALERTS_RAISED = Counter("callvault_alerts_total", "Alerts raised, by kind", ["kind"])
# A must-record call that was not recorded (by a rule, a failure, or not at all) / recorded incomplete.
MUST_RECORD_NOT_RECORDED = "must_record_not_recorded"
MUST_RECORD_INCOMPLETE = "must_record_incomplete"


@dataclass(frozen=True)
class NewAlert:
    kind: str
    detail: str
    username: str | None = None
    user_id: int | None = None
    role: str | None = None
    count: int | None = None
    threshold: int | None = None
    window_seconds: int | None = None
    recording_id: str | None = None


class AlertService:
    def __init__(self, catalog: Catalog, access_log: AccessLog, events: EventBus) -> None:
        self._catalog = catalog
        self._log = access_log
        self._events = events

    def raise_alert(
        self,
        alert: NewAlert,
        actor: Principal,
        once_within: timedelta | None = None,
        at: datetime | None = None,
    ) -> dict[str, Any] | None:
        """Raise ``alert`` (audited as ``actor``); None when the same one was raised already.

        The same one: same kind and recording (ever), or same kind and user within ``once_within``.
        """
        now = at or datetime.now(UTC)
        with self._catalog.write() as session:
            view = self.raise_in(session, alert, actor, once_within, now)
        if view is not None:
            ALERTS_RAISED.labels(kind=alert.kind).inc()
            log.warning("alert %s (%s): %s", view["id"], alert.kind, alert.detail)
        return view

    def raise_in(
        self,
        session: Session,
        alert: NewAlert,
        actor: Principal,
        once_within: timedelta | None,
        now: datetime,
    ) -> dict[str, Any] | None:
        """:meth:`raise_alert` inside the caller's write transaction (no metric, no log line)."""
        lock_chain(session)  # serialises with every audit append: one alert, not one per thread
        if self._already_raised(session, alert, once_within, now):
            return None
        row = Alert(
            at=now,
            kind=alert.kind,
            username=alert.username,
            user_id=alert.user_id,
            role=alert.role,
            count=alert.count,
            threshold=alert.threshold,
            window_seconds=alert.window_seconds,
            recording_id=alert.recording_id,
            detail=alert.detail,
        )
        session.add(row)
        session.flush()
        self._log.record_in(
            session, actor, "alert_raised", alert.recording_id, detail=f"alert {row.id}: {alert.detail}"
        )
        view = alert_view(row)
        self._events.publish_in(session, "alert.raised", view)
        return view

    @staticmethod
    def _already_raised(
        session: Session, alert: NewAlert, once_within: timedelta | None, now: datetime
    ) -> bool:
        query = select(Alert.id).where(Alert.kind == alert.kind).limit(1)
        if alert.recording_id is not None:
            query = query.where(Alert.recording_id == alert.recording_id)
        elif alert.username is not None and once_within is not None:
            query = query.where(Alert.username == alert.username, Alert.at >= now - once_within)
        else:
            return False
        return session.scalar(query) is not None

    def list(self, principal: Principal, limit: int = 100, kind: str | None = None) -> list[dict[str, Any]]:
        """Newest first (auditors, compliance officers, admins)."""
        require(principal, Action.AUDIT_READ)
        query = select(Alert).order_by(Alert.id.desc()).limit(max(1, min(limit, 1000)))
        if kind is not None:
            query = query.where(Alert.kind == kind)
        with self._catalog.read() as session:
            return [alert_view(a) for a in session.scalars(query)]


def alert_view(alert: Alert) -> dict[str, Any]:
    """An alert as the API and the ``alert.raised`` event show it."""
    return {
        "id": alert.id,
        "at": utc_iso(alert.at),
        "kind": alert.kind,
        "user": alert.username,
        "role": alert.role,
        "count": alert.count,
        "threshold": alert.threshold,
        "window_seconds": alert.window_seconds,
        "recording_id": alert.recording_id,
        "detail": alert.detail,
    }
