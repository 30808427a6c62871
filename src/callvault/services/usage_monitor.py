"""Usage monitoring: plays, downloads and exports per hour against role limits and own habits.

A contact center's classic leak is an insider pulling recordings in bulk (an
agent downloading 200 calls in an hour). After every successful play,
download or export the user's count over the last hour is compared with

- the limit for their role (``CALLVAULT_USAGE_ROLE_LIMITS``), and
- their own baseline: ``CALLVAULT_USAGE_BASELINE_FACTOR`` times their average
  hourly count over the previous 7 days, once they have a day of history, and
  never below ``CALLVAULT_USAGE_BASELINE_MIN``.

Crossing one raises an alert, once per user and kind per hour: a row in
``usage_alerts`` (``GET /api/v1/alerts``), an audit entry ``alert_raised``, the
domain event ``alert.raised`` (webhooks) and the Prometheus counter
``callvault_usage_alerts_total``. Raising is serialised with audit appends, so
concurrent requests raise one alert, not several.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Counter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import AccessEvent, UsageAlert
from callvault.db.seal_chain import utc_iso
from callvault.errors import CallvaultError
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.audit_log import lock_chain
from callvault.services.events import EventBus
from callvault.settings import Settings

log = logging.getLogger(__name__)

WATCHED = ("play", "download", "export")
WINDOW = timedelta(hours=1)
HISTORY = timedelta(days=7)
MIN_HISTORY = timedelta(days=1)
ALERTS = Counter("callvault_usage_alerts_total", "Usage alerts raised", ["kind", "role"])


@dataclass(frozen=True)
class UsagePolicy:
    role_limits: Mapping[str, int]
    baseline_factor: float
    baseline_min: int

    @classmethod
    def from_settings(cls, settings: Settings) -> UsagePolicy:
        return cls(
            dict(settings.usage_role_limits), settings.usage_baseline_factor, settings.usage_baseline_min
        )


class UsageMonitor:
    def __init__(
        self,
        catalog: Catalog,
        access_log: AccessLog,
        events: EventBus,
        policy: UsagePolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._catalog = catalog
        self._log = access_log
        self._events = events
        self._policy = policy
        self._clock = clock

    def observe(self, principal: Principal, action: str, recording_id: str | None, outcome: str) -> None:
        """Called after each audited event (see :meth:`AccessLog.watch`); never raises."""
        if action not in WATCHED or outcome != "ok" or principal.user_id is None:
            return
        try:
            self._check(principal)
        except CallvaultError as exc:
            log.warning("usage monitor could not check %s: %s", principal.username, exc.message)

    def _check(self, principal: Principal) -> None:
        now = self._clock()
        with self._catalog.read() as session:
            count = _count(session, principal.username, now - WINDOW, now)
            limits = self._limits(session, principal, now)
        crossed = [(kind, limit) for kind, limit in limits if count > limit]
        if not crossed:
            return
        kind, limit = crossed[0]
        raised = self._raise(principal, kind, count, limit, now)
        if raised is not None:
            ALERTS.labels(kind=kind, role=principal.role.value).inc()
            self._events.publish("alert.raised", raised)

    def _limits(self, session: Session, principal: Principal, now: datetime) -> list[tuple[str, int]]:
        limits = []
        role_limit = self._policy.role_limits.get(principal.role.value)
        if role_limit is not None:
            limits.append(("role_limit", role_limit))
        first = session.scalar(
            select(func.min(AccessEvent.at)).where(
                AccessEvent.username == principal.username, AccessEvent.at >= now - HISTORY
            )
        )
        if first is not None and _aware(first) <= now - MIN_HISTORY:
            history_hours = max(1.0, (now - WINDOW - _aware(first)).total_seconds() / 3600)
            past = _count(session, principal.username, now - HISTORY, now - WINDOW)
            baseline = past / history_hours
            limits.append(
                ("baseline", max(self._policy.baseline_min, int(baseline * self._policy.baseline_factor)))
            )
        return limits

    def _raise(
        self, principal: Principal, kind: str, count: int, limit: int, now: datetime
    ) -> dict[str, Any] | None:
        with self._catalog.write() as session:
            lock_chain(session)  # serialises with every audit append: one alert, not one per thread
            recent = session.scalar(
                select(UsageAlert.id).where(
                    UsageAlert.username == principal.username,
                    UsageAlert.kind == kind,
                    UsageAlert.at >= now - WINDOW,
                )
            )
            if recent is not None:
                return None
            alert = UsageAlert(
                at=now,
                username=principal.username,
                user_id=principal.user_id,
                role=principal.role.value,
                kind=kind,
                count=count,
                threshold=limit,
                window_seconds=int(WINDOW.total_seconds()),
            )
            session.add(alert)
            session.flush()
            detail = f"alert {alert.id}: {count} plays/downloads/exports in the last hour, {kind} {limit}"
            self._log.record_in(session, principal, "alert_raised", detail=detail)
            data = _view(alert)
        log.warning("usage alert %s for %s: %s", data["id"], principal.username, detail)
        return data

    def list(self, principal: Principal, limit: int = 100) -> list[dict[str, Any]]:
        require(principal, Action.AUDIT_READ)
        with self._catalog.read() as session:
            rows = session.scalars(
                select(UsageAlert).order_by(UsageAlert.id.desc()).limit(max(1, min(limit, 1000)))
            )
            return [_view(a) for a in rows]


def _count(session: Session, username: str, since: datetime, until: datetime) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AccessEvent)
            .where(
                AccessEvent.username == username,
                AccessEvent.at >= since,
                AccessEvent.at < until + timedelta(microseconds=1),
                AccessEvent.action.in_(WATCHED),
                AccessEvent.outcome == "ok",
            )
        )
        or 0
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _view(alert: UsageAlert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "at": utc_iso(alert.at),
        "user": alert.username,
        "role": alert.role,
        "kind": alert.kind,
        "count": alert.count,
        "threshold": alert.threshold,
        "window_seconds": alert.window_seconds,
    }
