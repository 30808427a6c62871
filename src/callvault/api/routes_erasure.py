"""``/api/v1/erasure-requests``: preview, execute, and the signed deletion certificate."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response

from callvault.api.deps import context, principal
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

router = APIRouter(prefix="/erasure-requests", tags=["erasure"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


@router.post("", status_code=201)
def create_request(ctx: Ctx, caller: Caller, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    """``{"subject": {"phone" | "email" | "customer_id": "..."}}`` → ``id`` and the preview
    (``recording_ids``, ``recordings``); 404 when nothing of the subject is stored."""
    return ctx.erasure.create(caller, body)


@router.get("/{request_id}")
def get_request(request_id: str, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.erasure.get(caller, request_id)


@router.post("/{request_id}/execute")
def execute(request_id: str, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Erase what may be erased; ``kept`` names each recording kept and why (hold, legal obligation)."""
    return ctx.erasure.execute(caller, request_id)


@router.get("/{request_id}/certificate")
def certificate(request_id: str, ctx: Ctx, caller: Caller) -> Response:
    """The Ed25519-signed deletion certificate (check it with ``callvault verify-certificate``)."""
    document = ctx.erasure.certificate(caller, request_id)
    return Response(
        document,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="erasure-{request_id}.json"'},
    )
