"""The webhook outbox: one catalog row per event and subscription, until delivered or given up.

Subscribed to the domain :class:`~callvault.services.events.EventBus`. An event
published inside a write transaction (``publish_in``: a recording sealed) gets
its rows in that same transaction, so it is queued if and only if the change
committed; one published after a commit gets them in a transaction of its own.
Rows are what the delivery loop (:mod:`callvault.runtime.webhooks.delivery`)
works from, so a queued event survives a stop, a crash or a receiver that is
down for hours.

Claiming a row for an attempt pushes its ``next_attempt_at`` out by a lease
(longer than a request may take): if the process dies mid-request, the row
falls due again once the lease runs out, and is sent again. Delivery is
therefore *at least once*; receivers drop duplicates by event id.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.webhook_models import WebhookDelivery, WebhookSubscription
from callvault.services.events import DomainEvent

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "recording.sealed",
    "recording.deleted",
    "alert.raised",
    "hold.created",
    "hold.released",
    "erasure.executed",
)
# Sent only on request (POST /webhooks/{id}/test), to the one subscription.
TEST_EVENT = "webhook.test"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class DueDelivery:
    id: int
    subscription_id: str
    url: str
    secret_sealed: bytes = field(repr=False)
    event_id: str
    event_type: str
    payload: str
    attempts: int  # attempts made before this one


def event_body(event: DomainEvent) -> str:
    """The JSON body receivers get (and the signature covers), byte for byte on every attempt."""
    body = {
        "id": event.id,
        "type": event.type,
        "occurred_at": event.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": dict(event.data),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)


class WebhookOutbox:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def add_listener(self, wake: Callable[[], None]) -> None:
        """``wake`` is called (from any thread) after new rows committed: the delivery loop's doorbell."""
        with self._lock:
            self._listeners.append(wake)

    def remove_listener(self, wake: Callable[[], None]) -> None:
        with self._lock:
            if wake in self._listeners:
                self._listeners.remove(wake)

    def _ring(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for wake in listeners:
            wake()

    # -- queueing (EventBus subscriber) ---------------------------------------

    def handle(self, event: DomainEvent) -> None:
        outer = self._catalog.in_write()
        if outer is not None:
            # Published from inside a write transaction (should have been publish_in): join it,
            # so the rows commit with it, or vanish with its rollback.
            self.handle_in(outer, event)
            return
        with self._catalog.write() as session:
            self.handle_in(session, event)

    def handle_in(self, session: Session, event: DomainEvent) -> None:
        subscriptions = [
            s for s in session.scalars(select(WebhookSubscription)) if event.type in (s.events or [])
        ]
        self._enqueue(session, subscriptions, event)

    def handle_many_in(self, session: Session, events: Sequence[DomainEvent]) -> None:
        """Queue a batch (a bulk deletion's events): one subscription lookup, one executemany insert."""
        subscriptions = list(session.scalars(select(WebhookSubscription)))
        now = datetime.now(UTC)
        rows = [
            _delivery_columns(s.id, event, now)
            for event in events
            for s in subscriptions
            if event.type in (s.events or [])
        ]
        if rows:
            session.execute(insert(WebhookDelivery), rows)
            Catalog.after_write(session, self._ring)

    def enqueue_to(self, session: Session, subscription: WebhookSubscription, event: DomainEvent) -> int:
        """Queue ``event`` for one subscription only (the test ping); returns the delivery id."""
        return self._enqueue(session, [subscription], event)[0]

    def _enqueue(
        self, session: Session, subscriptions: list[WebhookSubscription], event: DomainEvent
    ) -> list[int]:
        if not subscriptions:
            return []
        now = datetime.now(UTC)
        rows = [WebhookDelivery(**_delivery_columns(s.id, event, now)) for s in subscriptions]
        session.add_all(rows)
        session.flush()
        Catalog.after_write(session, self._ring)
        return [row.id for row in rows]

    # -- the delivery loop's side ---------------------------------------------

    def claim_due(self, limit: int, lease_seconds: float) -> list[DueDelivery]:
        """Up to ``limit`` deliveries due now, leased to the caller for ``lease_seconds``."""
        now = datetime.now(UTC)
        query = (
            select(WebhookDelivery, WebhookSubscription)
            .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
            .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            # PostgreSQL: a second server on the same catalog skips rows this one is claiming.
            .with_for_update(of=WebhookDelivery, skip_locked=True)
        )
        with self._catalog.write() as session:
            claimed = list(session.execute(query).tuples())
            if not claimed:
                return []
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_([d.id for d, _ in claimed]))
                .values(next_attempt_at=now + timedelta(seconds=lease_seconds))
            )
            return [
                DueDelivery(
                    d.id, s.id, s.url, s.secret_sealed, d.event_id, d.event_type, d.payload, d.attempts
                )
                for d, s in claimed
            ]

    def record_attempt(
        self,
        delivery_id: int,
        status_code: int | None,
        error: str | None,
        retry_at: datetime | None,
    ) -> None:
        """One attempt's outcome: delivered (no error), due again at ``retry_at``, or failed for good."""
        now = datetime.now(UTC)
        if error is None:
            status, next_at, finished = DELIVERED, now, now
        elif retry_at is not None:
            status, next_at, finished = PENDING, retry_at, None
        else:
            status, next_at, finished = FAILED, now, now
        with self._catalog.write() as session:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == PENDING)
                .values(
                    status=status,
                    attempts=WebhookDelivery.attempts + 1,
                    next_attempt_at=next_at,
                    last_status_code=status_code,
                    last_error=error[:300] if error else None,
                    finished_at=finished,
                )
            )

    def release(self, delivery_ids: list[int]) -> None:
        """Hand back leased rows whose attempt was cut short by a stop: due again at once."""
        if not delivery_ids:
            return
        with self._catalog.write() as session:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.status == PENDING)
                .values(next_attempt_at=datetime.now(UTC))
            )


def _delivery_columns(subscription_id: str, event: DomainEvent, now: datetime) -> dict[str, object]:
    """A new outbox row: due at once, no attempt made yet."""
    return {
        "subscription_id": subscription_id,
        "event_id": event.id,
        "event_type": event.type[:40],
        "payload": event_body(event),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
