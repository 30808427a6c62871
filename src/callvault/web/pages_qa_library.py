"""``/qa/coaching``: an agent's coaching items and the clips shared with them, played in the page.

The clips listed are the library's ``qa.library`` scope (for an agent: the
clips shared with them or their team); each plays from
``/qa/clips/{id}/audio``, the API's clip audio for the signed-in user, so
every play is audited as ``clip_play``. Marking a clip watched and
acknowledging a coaching item go through the same services as the API.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from callvault.api.audio_response import audio_response
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.web.render import page
from callvault.web.session import check_csrf, field, read_form, web_principal

router = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(web_principal)]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


@router.get("/qa/coaching")
def coaching_page(request: Request, caller: Caller) -> Response:
    ctx = _ctx(request)
    items = ctx.qa.coaching.list(caller)
    clips = ctx.qa.library.list_clips(caller)
    return page(request, "qa_coaching.html", items=items, clips=clips, done=request.query_params.get("done"))


@router.get("/qa/clips/{clip_id}/audio")
def clip_audio(clip_id: RowId, request: Request, caller: Caller) -> Response:
    return audio_response(request, _ctx(request).qa.library.open_clip_audio(caller, clip_id))


@router.post("/qa/clips/{clip_id}/watched")
async def clip_watched(clip_id: RowId, request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    await run_in_threadpool(_ctx(request).qa.library.mark_watched, caller, clip_id)
    return RedirectResponse(f"/qa/coaching?done=watched#clip-{clip_id}", status_code=303)


@router.post("/qa/coaching/{item_id}/acknowledge")
async def acknowledge(item_id: RowId, request: Request, caller: Caller) -> Response:
    form = await read_form(request)
    check_csrf(request, field(form, "csrf"))
    await run_in_threadpool(_ctx(request).qa.coaching.acknowledge, caller, item_id)
    return RedirectResponse("/qa/coaching?done=acknowledged", status_code=303)
