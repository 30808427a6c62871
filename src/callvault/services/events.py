"""Domain events: what happened, published once, for whoever subscribed (webhooks, alerts).

Services publish after their transaction commits (:meth:`EventBus.publish`); a
subscriber that fails is logged and never undoes or blocks the domain work.
A service that wants an event to be exactly as durable as the change it
reports publishes *inside* its write transaction instead
(:meth:`EventBus.publish_in`): a :class:`TransactionalSubscriber` (the webhook
outbox) then writes its rows in that same transaction, in a savepoint so that
its failure still cannot undo the domain change; plain subscribers are called
once the transaction has committed, as with ``publish``. Either way a rolled
back change announces nothing.

Event names are the public webhook names, e.g. ``recording.sealed``,
``recording.deleted``, ``alert.raised``, ``hold.created``, ``hold.released``,
``erasure.executed``. Every event has a unique ``id`` that receivers can use
to drop a redelivery.
"""

from __future__ import annotations

import functools
import logging
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainEvent:
    type: str
    data: Mapping[str, object]
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    id: str = field(default_factory=lambda: uuid.uuid4().hex)


class EventSubscriber(Protocol):
    def handle(self, event: DomainEvent) -> None: ...


@runtime_checkable
class TransactionalSubscriber(Protocol):
    """A subscriber that can also record an event inside the publisher's transaction."""

    def handle(self, event: DomainEvent) -> None: ...

    def handle_in(self, session: Session, event: DomainEvent) -> None: ...


class EventBus:
    """Synchronous fan-out to subscribers; thread-safe, never raises to the publisher."""

    def __init__(self) -> None:
        self._subscribers: list[EventSubscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: EventSubscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def _current(self) -> list[EventSubscriber]:
        with self._lock:
            return list(self._subscribers)

    def publish(self, event_type: str, data: Mapping[str, object]) -> None:
        """Announce a change that has already committed."""
        event = DomainEvent(event_type, dict(data))
        for subscriber in self._current():
            _deliver(subscriber, event)

    def publish_in(self, session: Session, event_type: str, data: Mapping[str, object]) -> None:
        """Announce the change ``session`` (from :meth:`Catalog.write`) is about to commit.

        Transactional subscribers write in the transaction (a savepoint each);
        the others hear of it after the commit, and nobody does if it rolls back.
        """
        self.publish_many_in(session, event_type, [data])

    def publish_many_in(
        self, session: Session, event_type: str, items: Sequence[Mapping[str, object]]
    ) -> None:
        """:meth:`publish_in` of one event per item: one savepoint per subscriber, not per event.

        A bulk deletion announces hundreds of recordings per transaction; a savepoint
        and a subscription lookup for each cost more than the deletion itself.
        """
        events = [DomainEvent(event_type, dict(data)) for data in items]
        if not events:
            return
        for subscriber in self._current():
            if isinstance(subscriber, TransactionalSubscriber):
                _deliver_in(session, subscriber, events)
            else:
                for event in events:
                    Catalog.after_write(session, functools.partial(_deliver, subscriber, event))


def _deliver(subscriber: EventSubscriber, event: DomainEvent) -> None:
    try:
        subscriber.handle(event)
    except Exception:  # a subscriber's failure must not undo the domain work
        log.exception("event subscriber failed for %s", event.type)


def _deliver_in(session: Session, subscriber: TransactionalSubscriber, events: list[DomainEvent]) -> None:
    try:
        # A savepoint: on PostgreSQL a failed statement would otherwise abort the whole
        # transaction, and with it the domain change the events report.
        with session.begin_nested():
            # A subscriber may take the whole batch at once (the outbox: one lookup, one insert).
            bulk = getattr(subscriber, "handle_many_in", None)
            if bulk is not None:
                bulk(session, events)
            else:
                for event in events:
                    subscriber.handle_in(session, event)
    except Exception:
        log.exception("event subscriber failed for %s", events[0].type)
