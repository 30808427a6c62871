"""The outbox row goes with the change it reports: committed together, or not at all."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callvault.db.models import ServerState
from callvault.db.webhook_models import WebhookDelivery
from callvault.services.context import ServiceContext
from callvault.services.events import DomainEvent
from tests.support.people import ADMIN


def _count(ctx: ServiceContext) -> int:
    with ctx.catalog.read() as session:
        return int(session.scalar(select(func.count()).select_from(WebhookDelivery)) or 0)


class Listener:
    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx
        self.seen: list[tuple[str, int]] = []

    def handle(self, event: DomainEvent) -> None:
        # Plain subscribers hear of a change only once it committed: the row is visible then.
        self.seen.append((event.type, _count(self.ctx)))


class Broken:
    def handle(self, event: DomainEvent) -> None:
        raise RuntimeError("subscriber bug")

    def handle_in(self, session: Session, event: DomainEvent) -> None:
        session.add(ServerState(key="x" * 64, value="a"))
        session.flush()
        session.add(ServerState(key="x" * 64, value="duplicate key: the statement fails"))
        session.flush()


def test_publish_in_commits_with_the_change_or_not_at_all(ctx: ServiceContext) -> None:
    ctx.webhooks.create(ADMIN, "https://93.184.215.14/in", ["recording.deleted"])
    listener = Listener(ctx)
    ctx.events.subscribe(listener)

    with pytest.raises(RuntimeError, match="domain change failed"):
        with ctx.catalog.write() as session:
            ctx.events.publish_in(session, "recording.deleted", {"recording_id": "r1"})
            raise RuntimeError("domain change failed")
    assert _count(ctx) == 0 and listener.seen == []

    # A transactional subscriber that fails (its savepoint rolls back) does not undo the change.
    ctx.events.subscribe(Broken())
    with ctx.catalog.write() as session:
        session.add(ServerState(key="domain", value="changed"))
        ctx.events.publish_in(session, "recording.deleted", {"recording_id": "r2"})
    with ctx.catalog.read() as session:
        assert session.get(ServerState, "domain") is not None
        assert session.get(ServerState, "x" * 64) is None
    assert _count(ctx) == 1 and listener.seen == [("recording.deleted", 1)]

    # Events nobody subscribed to queue nothing; after-commit publishing queues too.
    ctx.events.publish("hold.created", {"hold_id": "h1"})
    ctx.events.publish("recording.deleted", {"recording_id": "r3"})
    assert _count(ctx) == 2

    # publish() called by mistake inside a write transaction joins it (on SQLite a second
    # writer in the same thread would otherwise wait forever for the lock it holds).
    with pytest.raises(RuntimeError, match="rolled back"):
        with ctx.catalog.write():
            ctx.events.publish("recording.deleted", {"recording_id": "r4"})
            raise RuntimeError("rolled back")
    assert _count(ctx) == 2
    with ctx.catalog.write():
        ctx.events.publish("recording.deleted", {"recording_id": "r5"})
    assert _count(ctx) == 3


def _queued(ctx: ServiceContext) -> list[tuple[str, str]]:
    with ctx.catalog.read() as session:
        rows = session.execute(select(WebhookDelivery.subscription_id, WebhookDelivery.payload))
        return sorted((sub, payload) for sub, payload in rows)


def test_publish_many_in_queues_each_event_for_each_subscription_with_the_change(
    ctx: ServiceContext,
) -> None:
    deleted = ctx.webhooks.create(ADMIN, "https://93.184.215.14/a", ["recording.deleted"]).webhook.id
    events = ["recording.sealed", "recording.deleted"]
    both = ctx.webhooks.create(ADMIN, "https://93.184.215.14/b", events).webhook.id
    ctx.webhooks.create(ADMIN, "https://93.184.215.14/c", ["hold.created"])
    listener = Listener(ctx)
    ctx.events.subscribe(listener)
    batch = [{"recording_id": f"r{n}"} for n in range(3)]

    with pytest.raises(RuntimeError, match="domain change failed"):
        with ctx.catalog.write() as session:
            ctx.events.publish_many_in(session, "recording.deleted", batch)
            raise RuntimeError("domain change failed")
    assert _count(ctx) == 0 and listener.seen == []

    with ctx.catalog.write() as session:
        ctx.events.publish_many_in(session, "recording.deleted", batch)
    queued = _queued(ctx)
    assert sorted({sub for sub, _ in queued}) == sorted([deleted, both])
    for sub in (deleted, both):
        payloads = [p for s, p in queued if s == sub]
        assert len(payloads) == 3
        for n in range(3):
            assert sum(f'"recording_id":"r{n}"' in p for p in payloads) == 1
    # Plain subscribers hear each event once, after the commit.
    assert listener.seen == [("recording.deleted", 6)] * 3
