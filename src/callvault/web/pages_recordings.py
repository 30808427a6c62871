"""``/recordings`` (search) and ``/recordings/{id}`` (the recording page), plus what its player loads.

Every page goes through the services the API uses, with the signed-in user as
the principal: the search is scoped and audited as ``search``, opening a
recording is audited as ``view`` (and a recording outside the user's scope is
"not found", audited as such), playback as ``play``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from callvault.api import routes_comments, routes_recordings
from callvault.errors import CallvaultError, InvalidInput
from callvault.services.access import Action, Principal
from callvault.services.context import ServiceContext
from callvault.web.render import may, page
from callvault.web.search_form import CHOICES, PAGE_SIZES, read_search
from callvault.web.session import check_csrf, field, read_form, web_principal

router = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(web_principal)]
# Event kinds drawn on the timeline, and how they are named there.
EVENT_NAMES = {
    "hold": "Hold",
    "resume": "Resumed",
    "participant_joined": "Joined",
    "participant_left": "Left",
    "dtmf": "Keypad digits",
    "pause": "Recording paused",
    "pci_pause": "Recording paused",
    "pci_resume": "Recording resumed",
}


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


@router.get("/recordings")
def search_page(request: Request, caller: Caller) -> Response:
    ctx = _ctx(request)
    error, results, form = "", None, None
    try:
        form = read_search(request.query_params)
        results = ctx.search.search(caller, form.query)
    except InvalidInput as exc:
        error = exc.message
    status = 400 if error else 200
    values = form.values if form else {k: v for k, v in request.query_params.items()}
    return page(
        request,
        "search.html",
        status,
        form=form,
        values=values,
        results=results,
        error=error,
        choices=CHOICES,
        page_sizes=PAGE_SIZES,
        searched=bool(request.query_params),
    )


def _timeline(detail: dict[str, Any]) -> list[dict[str, Any]]:
    marks = []
    for event in detail.get("events", []):
        kind = str(event.get("kind", ""))
        marks.append(
            {
                "kind": kind,
                "name": EVENT_NAMES.get(kind, kind.replace("_", " ")),
                "at": event["offset_seconds"],
            }
        )
    return marks


@router.get("/recordings/{recording_id}")
def recording_page(recording_id: str, request: Request, caller: Caller) -> Response:
    ctx = _ctx(request)
    detail = ctx.search.get(caller, recording_id)
    comments = ctx.comments.list(caller, recording_id)
    playable = may(caller, Action.RECORDING_PLAY) and detail["status"] not in ("recording", "deleted")
    transcript = _transcript(ctx, caller, recording_id)
    return page(
        request,
        "recording.html",
        r=detail,
        comments=comments,
        timeline=_timeline(detail),
        turns=transcript.get("turns", []),
        transcript_redacted=transcript.get("redacted", True),
        unrecognised=[
            {"speaker": channel["speaker"], "reason": channel["unrecognised"]}
            for channel in transcript.get("channels", [])
            if channel.get("unrecognised")
        ],
        playable=playable and detail.get("tombstone") is None and bool(detail.get("audio_size")),
        may_download=may(caller, Action.RECORDING_DOWNLOAD),
        may_verify=may(caller, Action.INTEGRITY_VERIFY),
        may_comment=may(caller, Action.RECORDING_PLAY),
        verified=request.query_params.get("verified"),
    )


def _transcript(ctx: ServiceContext, caller: Principal, recording_id: str) -> dict[str, Any]:
    """The transcript as the caller may read it (redacted for roles without the originals;
    scoped and audited by the view service), or nothing: no right, not ready, destroyed."""
    if not may(caller, Action.TRANSCRIPT_READ):
        return {}
    try:
        return ctx.transcript_views.read(caller, recording_id)
    except CallvaultError:  # not transcribed yet, or destroyed: the page shows no transcript
        return {}


@router.get("/recordings/{recording_id}/audio")
def audio(
    recording_id: str,
    request: Request,
    caller: Caller,
    format: Literal["ogg", "wav"] = "ogg",
    download: bool = False,
) -> Response:
    """The API's audio endpoint (Range, download rights) for the signed-in user."""
    return routes_recordings.get_audio(recording_id, request, _ctx(request), caller, format, download)


@router.get("/recordings/{recording_id}/peaks")
def peaks(
    recording_id: str,
    request: Request,
    caller: Caller,
    points: Annotated[int, Query(ge=1, le=routes_comments.MAX_POINTS)] = 2000,
) -> dict[str, Any]:
    return routes_comments.get_peaks(recording_id, _ctx(request), caller, points)


@router.post("/recordings/{recording_id}/comments")
async def add_comment(recording_id: str, request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    raw_at = field(form, "at").strip()
    try:
        offset = _offset(raw_at)
        await run_in_threadpool(_ctx(request).comments.add, caller, recording_id, offset, field(form, "body"))
    except InvalidInput as exc:
        return RedirectResponse(
            f"/recordings/{recording_id}?comment_error={exc.message[:200]}#comments", status_code=303
        )
    return RedirectResponse(f"/recordings/{recording_id}#comments", status_code=303)


def _offset(raw: str) -> float:
    """Seconds, or m:ss / h:mm:ss as the page shows times."""
    try:
        parts = [float(p) for p in raw.split(":")] if raw else [0.0]
    except ValueError:
        raise InvalidInput("at: a moment of the call like 1:05 or 65") from None
    if len(parts) > 3 or any(p < 0 for p in parts):
        raise InvalidInput("at: a moment of the call like 1:05 or 65")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + part
    return seconds


@router.post("/recordings/{recording_id}/verify")
async def verify(recording_id: str, request: Request, caller: Caller) -> Response:
    """Check the recording's signature, hashes and seal now (roles that may verify integrity)."""
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    ctx = _ctx(request)
    await run_in_threadpool(ctx.search.get, caller, recording_id)  # scope first: 404 outside it
    try:
        results = await run_in_threadpool(ctx.integrity.verify, caller, [recording_id])
        outcome = "ok" if results and results[0].ok else "failed"
    except CallvaultError:
        outcome = "failed"
    return RedirectResponse(f"/recordings/{recording_id}?verified={outcome}#integrity", status_code=303)
