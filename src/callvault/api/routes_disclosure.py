"""``/api/v1/announcements`` (the recording announcements calls are checked for) and
``/api/v1/reports/disclosure`` (calls that needed the announcement and did not get it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from callvault.api.deps import context, principal
from callvault.api.upload_form import read_upload_form
from callvault.errors import CallvaultError, InvalidInput
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.disclosure_report import MAX_PAGE, Period

router = APIRouter(tags=["disclosure"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]

_ANNOUNCEMENT_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "WAV, FLAC, MP3 or Ogg: the announcement as callers hear it",
                        },
                        "name": {"type": "string", "description": "default: the file name without extension"},
                    },
                }
            }
        },
    }
}


@router.post("/announcements", status_code=201, openapi_extra=_ANNOUNCEMENT_SCHEMA)
async def add_announcement(request: Request) -> dict[str, Any]:
    """Upload a recording announcement (admins): 201 with its ``id``, ``name``, ``duration_seconds``.

    415 for a file that is not audio, 422 for audio that cannot be an
    announcement (silent, under 1 s or over 120 s of sound), 409 for a name
    in use. Decoded in the sandboxed decoder; only its fingerprint is kept.
    """
    ctx: ServiceContext = request.app.state.ctx
    caller = await run_in_threadpool(principal, request)
    await run_in_threadpool(ctx.announcements.may_add, caller)
    try:
        form = await read_upload_form(request, ctx.settings.max_upload_bytes, what="announcement")
        unknown = sorted(set(form.fields) - {"name"})
        if unknown:
            raise InvalidInput(f"unknown form fields: {', '.join(unknown)}; known: name")
        name = form.one("name")
    except CallvaultError as exc:
        await run_in_threadpool(ctx.announcements.log_refusal, caller, exc)
        raise
    assert form.file is not None
    data, form.file = form.file, None
    return await run_in_threadpool(ctx.announcements.add, caller, name, data, form.filename)


@router.get("/announcements")
def list_announcements(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": ctx.announcements.list(caller)}


@router.delete("/announcements/{announcement}", status_code=204)
def remove_announcement(announcement: str, ctx: Ctx, caller: Caller) -> Response:
    """Remove by id or name; checks already made keep the name of the announcement they heard."""
    ctx.announcements.remove(caller, announcement)
    return Response(status_code=204)


@router.get("/reports/disclosure")
def disclosure_report(
    ctx: Ctx,
    caller: Caller,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**12)] = 0,
) -> dict[str, Any]:
    """Calls started in [from, to) that needed the recording announcement and where it was not
    heard, oldest first, with the period's counts per state (verified, missing, not_required)."""
    return ctx.disclosure_report.missing(caller, Period(from_, to), limit, offset)
