"""``/api/v1/recordings``: search, detail, audio (with Range), upload."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from callvault.api.audio_response import audio_response
from callvault.api.deps import context, principal
from callvault.api.metrics import RECORDINGS_IMPORTED
from callvault.api.upload_form import UploadForm, read_upload_form
from callvault.errors import CallvaultError, InvalidInput
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
    team: str | None = None,
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
    disclosure: Literal["verified", "missing", "not_required"] | None = None,
    consent_requirement: Literal["one_party", "all_party_notification", "explicit_consent"] | None = None,
    consent_state: Literal["unknown", "notified", "consented", "objected"] | None = None,
    min_overtalk: Annotated[float | None, Query(ge=0, le=MAX_DURATION)] = None,
    max_overtalk: Annotated[float | None, Query(ge=0, le=MAX_DURATION)] = None,
    min_silence: Annotated[float | None, Query(ge=0, le=MAX_DURATION)] = None,
    max_silence: Annotated[float | None, Query(ge=0, le=MAX_DURATION)] = None,
    min_hold: Annotated[float | None, Query(ge=0, le=MAX_DURATION)] = None,
    min_talk_ratio: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_talk_ratio: Annotated[float | None, Query(ge=0, le=1)] = None,
    min_monologue: Annotated[float | None, Query(ge=0, le=MAX_DURATION)] = None,
    sentiment: Literal["positive", "neutral", "negative"] | None = None,
    category: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    text: Annotated[str | None, Query(description='words and "quoted phrases" said in the call')] = None,
    speaker: Literal["agent", "customer"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    sort: str = "-started_at",
) -> dict[str, Any]:
    query = RecordingQuery(
        agent=agent,
        team=team,
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
        disclosure=disclosure,
        consent_requirement=consent_requirement,
        consent_state=consent_state,
        min_overtalk=min_overtalk,
        max_overtalk=max_overtalk,
        min_silence=min_silence,
        max_silence=max_silence,
        min_hold=min_hold,
        min_talk_ratio=min_talk_ratio,
        max_talk_ratio=max_talk_ratio,
        min_monologue=min_monologue,
        sentiment=sentiment,
        category=category,
        text=text,
        speaker=speaker,
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
    redacted: bool = False,
) -> Response:
    """The audio; personal data found in the transcript silenced (WAV) when ``redacted`` is asked
    for or the caller's role may not hear it (agents and QA evaluators by default)."""
    audio = ctx.redacted_audio.open(caller, recording_id, format, download, redacted)
    return audio_response(request, audio, download)


@router.get("/{recording_id}/transcript")
def get_transcript(recording_id: str, ctx: Ctx, caller: Caller, redacted: bool = False) -> dict[str, Any]:
    """What was said: per channel (agent left, customer right) segments and words with times and
    confidence, and the merged turn-by-turn view. 409 while not transcribed (names the job's state).
    Personal data is replaced by ``[card]``, ``[ssn]`` ... when ``redacted`` or for roles that may
    not see it; ``redactions`` then lists each span's speaker, kind and times."""
    return ctx.transcript_views.read(caller, recording_id, redacted)


UPLOAD_FIELDS = ("agent", "customer", "direction", "started_at", "queue", "tag")
_UPLOAD_SCHEMA: dict[str, Any] = {
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
                            "description": "WAV, FLAC, MP3 or Ogg; stereo = agent left, customer right",
                        },
                        "agent": {"type": "string", "description": "username or SIP identity"},
                        "customer": {"type": "string"},
                        "direction": {"type": "string", "enum": ["inbound", "outbound"]},
                        "started_at": {"type": "string", "format": "date-time"},
                        "queue": {"type": "string"},
                        "tag": {"type": "array", "items": {"type": "string"}},
                    },
                }
            }
        },
    }
}


@router.post("", status_code=201, openapi_extra=_UPLOAD_SCHEMA)
async def upload_recording(request: Request) -> dict[str, Any]:
    """Upload a recording made elsewhere.

    The caller is authenticated and their role checked before a byte of the
    body is read; the body is then read with a running size cap (413 as soon
    as it passes CALLVAULT_MAX_UPLOAD_BYTES) and never written to disk.
    """
    ctx: ServiceContext = request.app.state.ctx
    caller = await run_in_threadpool(principal, request)
    await run_in_threadpool(ctx.importer.may_upload, caller)
    try:
        form = await read_upload_form(request, ctx.settings.max_upload_bytes)
        req = _import_request(form)
    except CallvaultError as exc:
        await run_in_threadpool(ctx.importer.log_refusal, caller, None, exc)
        raise
    assert form.file is not None
    data, form.file = form.file, None
    result = await run_in_threadpool(ctx.importer.import_file, caller, data, req)
    RECORDINGS_IMPORTED.inc()
    body: dict[str, Any] = {"id": result.recording_id, "status": result.status}
    if result.damage:
        body["damage"] = list(result.damage)
    return body


def _import_request(form: UploadForm) -> ImportRequest:
    unknown = sorted(set(form.fields) - set(UPLOAD_FIELDS))
    if unknown:
        raise InvalidInput(f"unknown form fields: {', '.join(unknown)}; known: {', '.join(UPLOAD_FIELDS)}")
    direction = form.one("direction") or None
    if direction not in (None, "inbound", "outbound"):
        raise InvalidInput("direction: must be inbound or outbound")
    started_at: datetime | None = None
    raw_start = form.one("started_at")
    if raw_start:
        try:
            started_at = datetime.fromisoformat(raw_start.strip().replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"started_at: {raw_start[:40]!r} is not an ISO 8601 time") from None
        if started_at.tzinfo is None:
            raise InvalidInput("started_at must include a time zone, e.g. 2026-01-31T09:00:00Z")
    return ImportRequest(
        agent=form.one("agent") or None,
        customer=form.one("customer") or None,
        direction=direction,  # type: ignore[arg-type]
        started_at=started_at,
        queue=form.one("queue") or None,
        tags=form.fields.get("tag", []),
        filename=form.filename,
    )
