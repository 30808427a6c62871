"""``/qa/library``: a coach's page to cut clips, gather them into playlists shared with agents
or teams, and give an agent a coaching item (evaluations and clips, with a due date).

The forms post (with the session's CSRF token) to the services the API uses
(``ClipLibrary.create_clip`` / ``create_playlist``, ``CoachingService.create``),
which check the coach's scope (a call, agent or team outside it is refused) and
write the audit entries (``clip_create``, ``playlist_create``,
``coaching_create``). Agents then find what was shared with them on
``/qa/coaching``, where every play is audited (``clip_play``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from starlette.datastructures import FormData

from callvault.db.models import User
from callvault.errors import CallvaultError, InvalidInput
from callvault.services.access import Action, Principal, Role, require
from callvault.services.context import ServiceContext
from callvault.web.render import page
from callvault.web.session import check_csrf, field, read_form, web_principal

router = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(web_principal)]


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _names(raw: str) -> list[str]:
    return [n.strip() for n in raw.split(",") if n.strip()]


def _moment(raw: str, label: str) -> float:
    """Seconds, or m:ss / h:mm:ss as the player shows times."""
    try:
        parts = [float(p) for p in raw.strip().split(":")]
    except ValueError:
        raise InvalidInput(f"{label}: a moment of the call like 1:05 or 65") from None
    if not 1 <= len(parts) <= 3 or any(p < 0 for p in parts):
        raise InvalidInput(f"{label}: a moment of the call like 1:05 or 65")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


def _share(form: FormData) -> dict[str, list[str]] | None:
    users, teams = _names(field(form, "share_users")), _names(field(form, "share_teams"))
    return {"users": users, "teams": teams} if users or teams else None


def _ids(form: FormData, name: str) -> list[int]:
    return [int(v) for v in form.getlist(name) if isinstance(v, str) and v.isdigit()]


def _agents(ctx: ServiceContext) -> list[str]:
    with ctx.catalog.read() as session:
        return list(
            session.scalars(
                select(User.username)
                .where(User.role == Role.AGENT.value, User.disabled.is_not(True))
                .order_by(User.username)
            )
        )


def _library(request: Request, caller: Principal, status_code: int = 200, **values: Any) -> Response:
    ctx = _ctx(request)
    evaluations = ctx.qa.evaluations.list(caller, None, None, 200, 0)
    return page(
        request,
        "qa_library.html",
        status_code,
        clips=ctx.qa.library.list_clips(caller),
        playlists=ctx.qa.library.list_playlists(caller),
        evaluations=[e for e in evaluations if e.get("score") is not None],
        agents=_agents(ctx),
        recording_id=values.pop("recording_id", request.query_params.get("recording", "")[:36]),
        **values,
    )


@router.get("/qa/library")
def library(request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_COACH)
    return _library(request, caller, notice=request.query_params.get("done", "")[:200])


async def _create(request: Request, caller: Principal, make: Any, what: str, anchor: str) -> Response:
    """Read the form, make the thing through the service; the page again with the error, if any."""
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    try:
        made = await run_in_threadpool(make, form)
    except CallvaultError as exc:
        recording = field(form, "recording_id").strip()[:36]
        return _library(request, caller, exc.status_code, error=exc.message, recording_id=recording)
    return RedirectResponse(f"/qa/library?done={what} {made['id']} saved.#{anchor}", status_code=303)


@router.post("/qa/library/clips")
async def create_clip(request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_COACH)

    def make(form: FormData) -> dict[str, Any]:
        body: dict[str, Any] = {
            "recording_id": field(form, "recording_id").strip(),
            "start": _moment(field(form, "start"), "start"),
            "end": _moment(field(form, "end"), "end"),
            "title": field(form, "title"),
            "tags": _names(field(form, "tags")),
        }
        if field(form, "notes").strip():
            body["notes"] = field(form, "notes")
        share = _share(form)
        if share:
            body["share"] = share
        return _ctx(request).qa.library.create_clip(caller, body)

    return await _create(request, caller, make, "Clip", "new-clip")


@router.post("/qa/library/playlists")
async def create_playlist(request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_COACH)

    def make(form: FormData) -> dict[str, Any]:
        body: dict[str, Any] = {"name": field(form, "name"), "clip_ids": _ids(form, "clip_ids")}
        if field(form, "topic").strip():
            body["topic"] = field(form, "topic").strip()
        share = _share(form)
        if share:
            body["share"] = share
        return _ctx(request).qa.library.create_playlist(caller, body)

    return await _create(request, caller, make, "Playlist", "new-playlist")


@router.post("/qa/library/coaching")
async def create_coaching(request: Request, caller: Caller) -> Response:
    require(caller, Action.QA_COACH)

    def make(form: FormData) -> dict[str, Any]:
        body: dict[str, Any] = {
            "agent": field(form, "agent"),
            "title": field(form, "title"),
            "evaluation_ids": _ids(form, "evaluation_ids"),
            "clip_ids": _ids(form, "clip_ids"),
        }
        if field(form, "notes").strip():
            body["notes"] = field(form, "notes")
        if field(form, "due").strip():
            body["due"] = field(form, "due").strip()
        return _ctx(request).qa.coaching.create(caller, body)

    return await _create(request, caller, make, "Coaching item", "new-coaching")
