"""``/api/v1/webhooks``: subscriptions, their delivery outcomes, and a test ping (admins).

Each delivery is a signed POST (``Callvault-Signature``; see the README for
checking it); the secret is in the answer to the creation and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field

from callvault.api.deps import context, principal
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.manifest import iso
from callvault.services.webhook_outbox import EVENT_TYPES
from callvault.services.webhook_targets import MAX_URL_LENGTH
from callvault.services.webhooks import SECRET_MAX, SECRET_MIN, DeliveryView, WebhookView

router = APIRouter(prefix="/webhooks", tags=["webhooks"])
Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
WebhookId = Annotated[str, Path(min_length=1, max_length=36)]
EventName = Literal[
    "recording.sealed",
    "recording.deleted",
    "alert.raised",
    "hold.created",
    "hold.released",
    "erasure.executed",
]
# The OpenAPI enum and the service's list are one list.
assert set(get_args(EventName)) == set(EVENT_TYPES)


class WebhookCreate(BaseModel):
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH, description="https:// URL of the receiver.")
    events: list[EventName] = Field(min_length=1, max_length=len(EVENT_TYPES))
    secret: str | None = Field(
        default=None,
        min_length=SECRET_MIN,
        max_length=SECRET_MAX,
        description="HMAC secret; chosen by the server (and shown once) when left out.",
    )
    description: str | None = Field(default=None, max_length=200)


def _webhook(view: WebhookView) -> dict[str, Any]:
    return {
        "id": view.id,
        "url": view.url,
        "events": view.events,
        "description": view.description,
        "created_by": view.created_by,
        "created_at": iso(view.created_at),
        "deliveries": {"pending": view.pending, "delivered": view.delivered, "failed": view.failed},
    }


def _delivery(view: DeliveryView) -> dict[str, Any]:
    return {
        "id": view.id,
        "event_id": view.event_id,
        "event": view.event_type,
        "status": view.status,
        "attempts": view.attempts,
        "last_status_code": view.last_status_code,
        "last_error": view.last_error,
        "created_at": iso(view.created_at),
        "next_attempt_at": iso(view.next_attempt_at),
        "finished_at": iso(view.finished_at),
    }


@router.post("", status_code=201)
def create_webhook(body: WebhookCreate, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Subscribe a URL to events; the answer holds the signing ``secret``, shown this once."""
    created = ctx.webhooks.create(caller, body.url, list(body.events), body.secret, body.description)
    return {**_webhook(created.webhook), "secret": created.secret}


@router.get("")
def list_webhooks(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": [_webhook(v) for v in ctx.webhooks.list_all(caller)]}


@router.get("/{webhook_id}")
def get_webhook(webhook_id: WebhookId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return _webhook(ctx.webhooks.get(caller, webhook_id))


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(webhook_id: WebhookId, ctx: Ctx, caller: Caller) -> None:
    """Unsubscribe; deliveries still queued for it are dropped."""
    ctx.webhooks.remove(caller, webhook_id)


@router.get("/{webhook_id}/deliveries")
def list_deliveries(
    webhook_id: WebhookId,
    ctx: Ctx,
    caller: Caller,
    status: Literal["pending", "delivered", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Newest first: outcome, attempts, the receiver's last HTTP status, the last error."""
    return {"items": [_delivery(v) for v in ctx.webhooks.deliveries(caller, webhook_id, status, limit)]}


@router.post("/{webhook_id}/test", status_code=202)
def test_webhook(webhook_id: WebhookId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Queue a signed ``webhook.test`` event to this subscription; its outcome shows in the deliveries."""
    return {"event_id": ctx.webhooks.send_test(caller, webhook_id)}
