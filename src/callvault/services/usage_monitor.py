"""Usage monitoring: plays, downloads and exports per hour against role limits and own habits.

A contact center's classic leak is an insider pulling recordings in bulk (an
agent downloading 200 calls in an hour). After every successful play,
download or export the user's count over the last hour is compared with

- the limit for their role (``CALLVAULT_USAGE_ROLE_LIMITS``), and
- their own baseline: ``CALLVAULT_USAGE_BASELINE_FACTOR`` times their average
  hourly count over the previous 7 days, once they have a day of history, and
  never below ``CALLVAULT_USAGE_BASELINE_MIN``.

Crossing one raises an alert (:mod:`callvault.services.alerts`: ``GET
/api/v1/alerts``, audit entry ``alert_raised``, event ``alert.raised``), once per
user and kind per hour, also counted in ``callvault_usage_alerts_total{kind,role}``.
Concurrent requests raise one alert, not several (see there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import Counter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.models import AccessEvent
from callvault.errors import CallvaultError
from callvault.services.access import Principal
from callvault.services.alerts import AlertService, NewAlert
from callvault.settings import Settings

log = logging.getLogger(__name__)

# A coaching clip played is audio of a recording played (services.qa_library).
WATCHED = ("play", "download", "export", "clip_play")
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
        alerts: AlertService,
        policy: UsagePolicy,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._catalog = catalog
        self._alerts = alerts
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
        detail = f"{count} plays/downloads/exports in the last hour, {kind} {limit}"
        alert = NewAlert(
            kind,
            detail,
            username=principal.username,
            user_id=principal.user_id,
            role=principal.role.value,
            count=count,
            threshold=limit,
            window_seconds=int(WINDOW.total_seconds()),
        )
        if self._alerts.raise_alert(alert, principal, once_within=WINDOW, at=now) is not None:
            ALERTS.labels(kind=kind, role=principal.role.value).inc()

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
