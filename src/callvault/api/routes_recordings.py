"""``/api/v1/recordings``: search, detail, audio (with Range), upload."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from callvault.api.deps import context, principal
from callvault.api.metrics import AUDIO_BYTES_SERVED, RECORDINGS_IMPORTED
from callvault.api.ranges import parse_range
from callvault.errors import InvalidInput, PayloadTooLarge
from callvault.services.access import Principal
from callvault.services.context import ServiceContext
from callvault.services.importer import ImportRequest
from callvault.services.search import MAX_DURATION, MAX_OFFSET, RecordingQuery

router = APIRouter(prefix="/recordings", tags=["recordings"])

Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]


@router.get("")
def list_recordings(
    ctx: Ctx,
    caller: Caller,
    agent: str | None = None,
    customer: str | None = None,
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
    direction: Literal["inbound", "outbound"] | None = None,
    queue: str | None = None,
    tag: str | None = None,
    min_duration: Annotated[float | None, Query(ge=0, le=MAX_DURATION)] = None,
    max_duration: Annotated[float | None, Query(ge=0, le=MAX_DURATION)] = None,
    call_id: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    sort: str = "-started_at",
) -> dict[str, Any]:
    query = RecordingQuery(
        agent=agent,
        customer=customer,
        started_from=from_,
        started_to=to,
        direction=direction,
        queue=queue,
        tag=tag,
        min_duration=min_duration,
        max_duration=max_duration,
        call_id=call_id,
        status=status,
        limit=limit,
        offset=offset,
        sort=sort,
    )
    page = ctx.search.search(caller, query)
    return {"items": page.items, "total": page.total, "limit": page.limit, "offset": page.offset}


@router.get("/{recording_id}")
def get_recording(recording_id: str, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return ctx.search.get(caller, recording_id)


@router.get("/{recording_id}/audio")
def get_audio(
    recording_id: str,
    request: Request,
    ctx: Ctx,
    caller: Caller,
    format: Literal["ogg", "wav"] = "ogg",
    download: bool = False,
) -> Response:
    audio = ctx.playback.open_audio(caller, recording_id, format, download=download)
    byte_range = parse_range(request.headers.get("range"), audio.size)
    disposition = "attachment" if download else "inline"
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Disposition": f'{disposition}; filename="{audio.filename}"',
        "Cache-Control": "no-store",
    }
    start, end = byte_range if byte_range else (0, audio.size)
    headers["Content-Length"] = str(end - start)
    status = 206 if byte_range else 200
    if byte_range:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{audio.size}"
    AUDIO_BYTES_SERVED.inc(end - start)
    return StreamingResponse(
        audio.iter_range(start, end), status_code=status, media_type=audio.content_type, headers=headers
    )


@router.post("", status_code=201)
async def upload_recording(
    request: Request,
    file: Annotated[
        UploadFile, File(description="WAV, FLAC, MP3 or Ogg; stereo = agent left, customer right")
    ],
    agent: Annotated[str | None, Form()] = None,
    customer: Annotated[str | None, Form()] = None,
    direction: Annotated[Literal["inbound", "outbound"] | None, Form()] = None,
    started_at: Annotated[datetime | None, Form()] = None,
    queue: Annotated[str | None, Form()] = None,
    tag: Annotated[list[str] | None, Form()] = None,
) -> dict[str, Any]:
    ctx: ServiceContext = request.app.state.ctx
    caller = await run_in_threadpool(principal, request)
    limit = ctx.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"upload is larger than the {limit}-byte limit (CALLVAULT_MAX_UPLOAD_BYTES)")
    if started_at is not None and started_at.tzinfo is None:
        raise InvalidInput("started_at must include a time zone, e.g. 2026-01-31T09:00:00Z")
    req = ImportRequest(
        agent=agent,
        customer=customer,
        direction=direction,
        started_at=started_at,
        queue=queue,
        tags=tag or [],
        filename=file.filename,
    )
    recording_id = await run_in_threadpool(ctx.importer.import_bytes, caller, data, req)
    RECORDINGS_IMPORTED.inc()
    return {"id": recording_id, "status": "complete"}
