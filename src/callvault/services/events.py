"""Domain events: what happened, published once, for whoever subscribed (webhooks, alerts).

Services publish after their transaction commits; a subscriber that fails is logged
and never undoes or blocks the domain work (a webhook outbox, for instance, queues
durably on its own). Event names are the public webhook names, e.g.
``recording.sealed``, ``recording.deleted``, ``alert.raised``, ``hold.created``,
``hold.released``, ``erasure.executed``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainEvent:
    type: str
    data: Mapping[str, object]
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class EventSubscriber(Protocol):
    def handle(self, event: DomainEvent) -> None: ...


class EventBus:
    """Synchronous fan-out to subscribers; thread-safe, never raises to the publisher."""

    def __init__(self) -> None:
        self._subscribers: list[EventSubscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: EventSubscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def publish(self, event_type: str, data: Mapping[str, object]) -> None:
        event = DomainEvent(event_type, dict(data))
        with self._lock:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber.handle(event)
            except Exception:  # a subscriber's failure must not undo the domain work
                log.exception("event subscriber failed for %s", event_type)
