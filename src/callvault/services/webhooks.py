"""Webhook subscriptions: who hears about which events, where, with which secret.

Administrators only (``webhook.manage``), and every change is in the access
trail (the target's scheme and host, never its path or query, which may hold
a token). The signing secret is chosen by the server unless given, returned
once, when the subscription is created, and stored sealed
(:mod:`callvault.crypto.secret_box`); it never appears in a listing or a log.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from callvault.crypto.secret_box import SecretBox
from callvault.db.catalog import Catalog
from callvault.db.webhook_models import WebhookDelivery, WebhookSubscription
from callvault.errors import InvalidInput, NotFound, PermissionDenied
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.events import DomainEvent
from callvault.services.webhook_outbox import EVENT_TYPES, TEST_EVENT, WebhookOutbox
from callvault.services.webhook_targets import check_url, resolve_target

SECRET_MIN, SECRET_MAX = 16, 200
MAX_DESCRIPTION = 200
DELIVERY_STATUSES = ("pending", "delivered", "failed")


@dataclass(frozen=True)
class WebhookView:
    id: str
    url: str
    events: list[str]
    description: str | None
    created_by: str
    created_at: datetime
    pending: int
    delivered: int
    failed: int


@dataclass(frozen=True)
class DeliveryView:
    id: int
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class CreatedWebhook:
    webhook: WebhookView
    secret: str  # shown this once


def clean_events(events: list[str]) -> list[str]:
    wanted = list(dict.fromkeys(e.strip() for e in events if e.strip()))
    if not wanted:
        raise InvalidInput(f"name at least one event: {', '.join(EVENT_TYPES)}")
    unknown = [e for e in wanted if e not in EVENT_TYPES]
    if unknown:
        raise InvalidInput(f"unknown event {unknown[0][:60]!r}; choose from {', '.join(EVENT_TYPES)}")
    return wanted


def clean_secret(secret: str | None) -> str:
    if secret is None:
        return "whsec_" + secrets.token_urlsafe(32)
    if not SECRET_MIN <= len(secret) <= SECRET_MAX or not secret.isprintable() or secret != secret.strip():
        raise InvalidInput(
            f"the secret must be {SECRET_MIN} to {SECRET_MAX} printable characters without surrounding spaces"
        )
    return secret


def _where(url: str) -> str:
    parts = check_url(url)
    return f"{parts.scheme}://{parts.netloc}"


class WebhookService:
    def __init__(
        self,
        catalog: Catalog,
        box: SecretBox,
        outbox: WebhookOutbox,
        access_log: AccessLog,
        allow_private_targets: bool,
    ) -> None:
        self._catalog = catalog
        self._box = box
        self._outbox = outbox
        self._log = access_log
        self.allow_private_targets = allow_private_targets

    def _require(self, principal: Principal, action: str) -> None:
        try:
            require(principal, Action.WEBHOOK_MANAGE)
        except PermissionDenied as exc:
            self._log.record(principal, action, detail=exc.message, outcome="denied")
            raise

    def create(
        self,
        principal: Principal,
        url: str,
        events: list[str],
        secret: str | None = None,
        description: str | None = None,
    ) -> CreatedWebhook:
        self._require(principal, "webhook.create")
        try:
            wanted = clean_events(events)
            chosen = clean_secret(secret)
            if description is not None and len(description) > MAX_DESCRIPTION:
                raise InvalidInput(f"the description is longer than {MAX_DESCRIPTION} characters")
            resolve_target(url, self.allow_private_targets)  # refused now, not at the first delivery
        except InvalidInput as exc:
            self._log.record(principal, "webhook.create", detail=exc.message[:300], outcome="refused")
            raise
        subscription_id = str(uuid.uuid4())
        with self._catalog.write() as session:
            row = WebhookSubscription(
                id=subscription_id,
                url=url,
                events=wanted,
                secret_sealed=self._box.seal(chosen.encode(), subscription_id),
                description=description,
                created_by=principal.username[:120],
                created_at=datetime.now(UTC),
            )
            session.add(row)
        self._log.record(
            principal,
            "webhook.create",
            detail=f"id={subscription_id} to={_where(url)} events={','.join(wanted)}",
        )
        return CreatedWebhook(self.get(principal, subscription_id, audit=False), chosen)

    def list_all(self, principal: Principal) -> list[WebhookView]:
        self._require(principal, "webhook.list")
        with self._catalog.read() as session:
            rows = list(session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.created_at)))
            views = [self._view(session, row) for row in rows]
        self._log.record(principal, "webhook.list", detail=f"{len(views)} subscriptions")
        return views

    def get(self, principal: Principal, subscription_id: str, audit: bool = True) -> WebhookView:
        self._require(principal, "webhook.view")
        with self._catalog.read() as session:
            view = self._view(session, self._row(session, subscription_id))
        if audit:
            self._log.record(principal, "webhook.view", detail=f"id={subscription_id}")
        return view

    def remove(self, principal: Principal, subscription_id: str) -> None:
        """Delete the subscription and its deliveries (queued ones are never sent)."""
        self._require(principal, "webhook.delete")
        with self._catalog.write() as session:
            row = self._row(session, subscription_id)
            where = _where(row.url)
            session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id))
            session.delete(row)
        self._log.record(principal, "webhook.delete", detail=f"id={subscription_id} to={where}")

    def deliveries(
        self, principal: Principal, subscription_id: str, status: str | None = None, limit: int = 100
    ) -> list[DeliveryView]:
        """Newest first: each event's outcome, attempts, last HTTP status and error."""
        self._require(principal, "webhook.deliveries")
        if status is not None and status not in DELIVERY_STATUSES:
            raise InvalidInput(f"status must be one of {', '.join(DELIVERY_STATUSES)}")
        query = (
            select(WebhookDelivery)
            .where(WebhookDelivery.subscription_id == subscription_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(max(1, min(limit, 1000)))
        )
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        with self._catalog.read() as session:
            self._row(session, subscription_id)
            views = [
                DeliveryView(
                    d.id,
                    d.event_id,
                    d.event_type,
                    d.status,
                    d.attempts,
                    d.last_status_code,
                    d.last_error,
                    d.created_at,
                    d.next_attempt_at if d.status == "pending" else None,
                    d.finished_at,
                )
                for d in session.scalars(query)
            ]
        self._log.record(principal, "webhook.deliveries", detail=f"id={subscription_id}")
        return views

    def send_test(self, principal: Principal, subscription_id: str) -> str:
        """Queue a ``webhook.test`` event to this subscription only; returns the event id."""
        self._require(principal, "webhook.test")
        event = DomainEvent(
            TEST_EVENT, {"subscription_id": subscription_id, "requested_by": principal.username}
        )
        with self._catalog.write() as session:
            self._outbox.enqueue_to(session, self._row(session, subscription_id), event)
        self._log.record(principal, "webhook.test", detail=f"id={subscription_id} event={event.id}")
        return event.id

    def secret_of(self, subscription_id: str, sealed: bytes) -> str:
        """The signing secret, for the delivery loop only."""
        return self._box.open(sealed, subscription_id).decode()

    @staticmethod
    def _row(session: Session, subscription_id: str) -> WebhookSubscription:
        row = session.get(WebhookSubscription, subscription_id) if len(subscription_id) <= 36 else None
        if row is None:
            raise NotFound(f"webhook {subscription_id[:40]} not found")
        return row

    @staticmethod
    def _view(session: Session, row: WebhookSubscription) -> WebhookView:
        counted = session.execute(
            select(WebhookDelivery.status, func.count())
            .where(WebhookDelivery.subscription_id == row.id)
            .group_by(WebhookDelivery.status)
        ).tuples()
        counts = {status: count for status, count in counted}
        return WebhookView(
            row.id,
            row.url,
            list(row.events),
            row.description,
            row.created_by,
            row.created_at,
            counts.get("pending", 0),
            counts.get("delivered", 0),
            counts.get("failed", 0),
        )
