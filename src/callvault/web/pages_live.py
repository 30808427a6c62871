"""``/live``: the calls being recorded now, refreshed by server-sent events, and the recorder's health.

The event stream sends the viewer's live calls (with each stream's packet
loss so far) every second and the health (SIP per transport, finalisation
backlog, storage) every five; it re-checks the session every minute and ends when the session
has (the page then shows that it stopped and offers to sign in again).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from callvault.runtime.call_control import CallControl
from callvault.runtime.live_calls import live_calls, recorder_health
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.web.render import page
from callvault.web.session import SignInRequired, web_principal

router = APIRouter(include_in_schema=False)
Caller = Annotated[Principal, Depends(web_principal)]
TICK_SECONDS = 1.0
HEALTH_EVERY = 5
SESSION_CHECK_EVERY = 60


def _health(request: Request) -> dict[str, Any]:
    ctx: ServiceContext = request.app.state.ctx
    calls: CallControl = request.app.state.calls
    health_extra = request.app.state.health_extra
    extra = dict(health_extra()) if health_extra else {}
    return recorder_health(ctx, extra.get("sip") == "listening", len(calls.live_sessions()), extra)


@router.get("/live")
def live_page(request: Request, caller: Caller) -> Response:
    ctx: ServiceContext = request.app.state.ctx
    calls = live_calls(ctx, request.app.state.calls, caller)
    # The page shows calls (who with whom): opening it is an access event, its updates are not.
    ctx.access_log.record(caller, "live_view", detail=f"{len(calls)} calls in scope")
    return page(request, "live.html", calls=calls, health=_health(request))


@router.get("/live/events")
async def live_events(request: Request, caller: Caller) -> StreamingResponse:
    ctx: ServiceContext = request.app.state.ctx

    async def stream() -> AsyncIterator[str]:
        tick = 0
        while not await request.is_disconnected():
            if tick and tick % SESSION_CHECK_EVERY == 0:
                try:
                    await run_in_threadpool(web_principal, request)
                except SignInRequired:
                    yield "event: ended\ndata: {}\n\n"
                    return
            calls = await run_in_threadpool(live_calls, ctx, request.app.state.calls, caller)
            yield f"event: calls\ndata: {json.dumps(calls)}\n\n"
            if tick % HEALTH_EVERY == 0:
                health = await run_in_threadpool(_health, request)
                yield f"event: health\ndata: {json.dumps(health)}\n\n"
            tick += 1
            await asyncio.sleep(TICK_SECONDS)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
