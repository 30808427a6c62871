"""Compliance endpoints: audit events, alerts, evidence bundles, GDPR access requests."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from callvault.api.deps import context, principal
from callvault.services.access import Principal
from callvault.services.audit_query import MAX_PAGE, AuditEvents, AuditQuery, to_csv
from callvault.services.context import ServiceContext
from callvault.services.evidence import EvidenceService

router = APIRouter(tags=["compliance"])
Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


@router.get("/audit/events", response_model=None)
def audit_events(
    ctx: Ctx,
    caller: Caller,
    user: str | None = None,
    action: str | None = None,
    recording_id: str | None = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | Response:
    """The audit log (auditors, compliance officers, admins), newest first; ``format=csv`` for a sheet."""
    query = AuditQuery(user, action, recording_id, from_, to, limit, offset)
    items, total = AuditEvents(ctx.catalog, ctx.access_log).search(caller, query)
    if format == "csv":
        return Response(
            to_csv(items),
            media_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": 'attachment; filename="audit-events.csv"',
                "X-Total-Count": str(total),
            },
        )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/recordings/{recording_id}/evidence", response_class=Response)
async def evidence_bundle(recording_id: str, ctx: Ctx, caller: Caller) -> Response:
    """A signed evidence bundle (zip) for disputes and courts; needs the download right."""
    service = EvidenceService(
        ctx.catalog, ctx.signer, ctx.access_log, ctx.audit_log, ctx.playback, ctx.search
    )
    data = await run_in_threadpool(service.build, caller, recording_id)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="evidence-{recording_id}.zip"'},
    )


@router.post("/access-requests", response_class=Response)
async def access_request(
    ctx: Ctx,
    caller: Caller,
    subject: Annotated[dict[str, str], Body(embed=True, examples=[{"phone": "+1 415 555 0100"}])],
) -> Response:
    """GDPR Art. 15: every recording of one person (phone, email or customer_id) as one zip."""
    data, count = await run_in_threadpool(ctx.access_requests.export, caller, subject)
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": 'attachment; filename="access-request.zip"',
            "X-Recording-Count": str(count),
        },
    )


@router.get("/alerts")
def alerts(
    ctx: Ctx,
    caller: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    kind: Annotated[str | None, Query(max_length=48)] = None,
) -> dict[str, Any]:
    """Alerts, newest first (``kind`` filters): ``role_limit`` / ``baseline`` (a user's plays,
    downloads and exports per hour over their role's limit or their own baseline: user, role,
    count, threshold, window_seconds), ``must_record_not_recorded`` / ``must_record_incomplete``
    (a regulated user's call not recorded, or recorded incomplete: recording_id, detail)."""
    return {"items": ctx.alerts.list(caller, limit, kind)}
