"""``/api/v1/legal-holds``: create, list, and the two-person release."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends

from callvault.api.deps import context, principal
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

router = APIRouter(prefix="/legal-holds", tags=["legal holds"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


@router.post("", status_code=201)
def create_hold(ctx: Ctx, caller: Caller, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """``{"name", "reason", "criteria": {"customers", "agents", "teams", "from", "to", "call_ids",
    "recording_ids"}}`` → the hold with its ``id`` and how many recordings it ``held``."""
    return ctx.holds.create(caller, body)


@router.get("")
def list_holds(ctx: Ctx, caller: Caller, active: bool = False) -> dict[str, Any]:
    return {"items": ctx.holds.list(caller, include_released=not active)}


@router.get("/{hold_id}")
def get_hold(hold_id: int, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.holds.get(caller, hold_id)


@router.post("/{hold_id}/release")
def request_release(hold_id: int, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """First step of a release; the hold stays in force until another person approves."""
    return ctx.holds.request_release(caller, hold_id)


@router.post("/{hold_id}/release/approve")
def approve_release(hold_id: int, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Second step, by a different compliance officer or admin (403 for the requester)."""
    return ctx.holds.approve_release(caller, hold_id)
