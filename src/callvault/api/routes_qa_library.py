"""``/api/v1/qa``: scorecards (JSON or CSV), coaching clips and playlists, coaching items."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response

from callvault.api.audio_response import audio_response
from callvault.api.deps import context, principal
from callvault.services.access import Principal
from callvault.services.context import ServiceContext

router = APIRouter(prefix="/qa", tags=["quality management"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
Json = Annotated[Any, Body()]
# Catalog row ids are 32-bit: a larger one is a 400, not a driver error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("/scorecards", response_model=None)
def scorecards(
    ctx: Ctx,
    caller: Caller,
    group: Literal["agent", "team", "form"] = "agent",
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    form_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | Response:
    """Per agent, team or form over call dates [from, to): evaluations, average score, auto-fail
    rate, per-section averages, the weekly trend and the target; ``format=csv`` for a spreadsheet."""
    report = ctx.qa.scorecards.report(caller, group, from_, to, form_id)
    if format == "csv":
        return PlainTextResponse(
            ctx.qa.scorecards.to_csv(report),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="scorecard-{group}.csv"'},
        )
    return report


@router.post("/clips", status_code=201)
def create_clip(ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """``{"recording_id", "start", "end", "title", "notes", "tags", "share": {"users", "teams"}}``
    (seconds into the call, within its length)."""
    return ctx.qa.library.create_clip(caller, body)


@router.get("/clips")
def list_clips(ctx: Ctx, caller: Caller, tag: str | None = None) -> dict[str, Any]:
    return {"items": ctx.qa.library.list_clips(caller, tag)}


@router.get("/clips/{clip_id}")
def get_clip(clip_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.qa.library.get_clip(caller, clip_id)


@router.get("/clips/{clip_id}/audio")
def clip_audio(clip_id: RowId, request: Request, ctx: Ctx, caller: Caller) -> Response:
    """The clip as WAV, cut from the encrypted recording as it is sent (410 once the recording's
    audio is destroyed). Every play is audited."""
    return audio_response(request, ctx.qa.library.open_clip_audio(caller, clip_id))


@router.get("/clips/{clip_id}/export")
def export_clip(
    clip_id: RowId,
    request: Request,
    ctx: Ctx,
    caller: Caller,
    basis: Annotated[str, Query(min_length=3, max_length=500)],
) -> Response:
    """Compliance officers: the clip as a WAV attachment to keep under the policy named in
    ``basis`` (audited as ``export``); it then no longer depends on the recording's retention."""
    return audio_response(request, ctx.qa.library.export_clip(caller, clip_id, basis), download=True)


@router.post("/clips/{clip_id}/share")
def share_clip(clip_id: RowId, ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """``{"users": [usernames], "teams": [team names]}``, inside the caller's team."""
    return ctx.qa.library.share(caller, clip_id, body)


@router.post("/clips/{clip_id}/watched")
def clip_watched(clip_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.qa.library.mark_watched(caller, clip_id)


@router.post("/playlists", status_code=201)
def create_playlist(ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """``{"name", "topic", "clip_ids", "share": {"users", "teams"}}``."""
    return ctx.qa.library.create_playlist(caller, body)


@router.get("/playlists")
def list_playlists(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": ctx.qa.library.list_playlists(caller)}


@router.post("/coaching", status_code=201)
def create_coaching(ctx: Ctx, caller: Caller, body: Json) -> dict[str, Any]:
    """``{"agent", "title", "notes", "due", "evaluation_ids", "clip_ids"}``; the clips are shared
    with the agent."""
    return ctx.qa.coaching.create(caller, body)


@router.get("/coaching")
def list_coaching(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": ctx.qa.coaching.list(caller)}


@router.post("/coaching/{item_id}/acknowledge")
def acknowledge_coaching(item_id: RowId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.qa.coaching.acknowledge(caller, item_id)
