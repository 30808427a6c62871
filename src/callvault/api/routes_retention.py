"""``/api/v1/retention-policies``, ``/api/v1/retention/*`` and a recording's retention attributes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Response

from callvault.api.deps import context, principal
from callvault.errors import InvalidInput
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.retention import MAX_PREVIEW_DAYS

router = APIRouter(tags=["retention"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
JsonObject = Annotated[dict[str, Any], Body()]


@router.post("/retention-policies", status_code=201)
def add_policy(ctx: Ctx, caller: Caller, body: JsonObject) -> dict[str, Any]:
    """``{"name", "keep_days", "match": {"teams", "queues", "directions", "tags", "statuses",
    "labels", "consent_states"}, "legal_obligation"}`` → the policy with its ``id``."""
    return ctx.retention.add_policy(caller, body)


@router.get("/retention-policies")
def list_policies(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": ctx.retention.list_policies(caller)}


@router.delete("/retention-policies/{policy}", status_code=204)
def remove_policy(policy: str, ctx: Ctx, caller: Caller) -> Response:
    """Remove a policy by id or name."""
    ctx.retention.remove_policy(caller, policy)
    return Response(status_code=204)


@router.get("/retention/preview")
def preview(
    ctx: Ctx, caller: Caller, days: Annotated[int, Query(ge=0, le=MAX_PREVIEW_DAYS)] = 30
) -> dict[str, Any]:
    """What would be deleted now and in the next ``days`` days: count, bytes, oldest, per policy."""
    return ctx.retention.preview(caller, days)


@router.post("/retention/run")
def run(ctx: Ctx, caller: Caller, body: Annotated[dict[str, Any] | None, Body()] = None) -> dict[str, Any]:
    """``{"dry_run": bool}`` → counts and bytes deleted (or that would be)."""
    body = body or {}
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool) or set(body) - {"dry_run"}:
        raise InvalidInput('body must be {"dry_run": true|false}')
    return ctx.retention.run(caller, dry_run=dry_run)


@router.patch("/recordings/{recording_id}/retention")
def set_retention_attributes(recording_id: str, ctx: Ctx, caller: Caller, body: JsonObject) -> dict[str, Any]:
    """``{"labels": [...], "consent_state": "unknown"|"notified"|"consented"|"objected"|null}``."""
    return ctx.labels.update(caller, recording_id, body)
