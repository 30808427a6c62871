"""``/api/v1/captures``: upload a packet capture (pcap, pcapng, gzip); every call in it is recorded.

Allowed to roles that may upload recordings over the whole catalogue (admin,
compliance officer): a capture's calls are attributed to agents by the
agent directory, not by the uploader, so a team-scoped supervisor could
otherwise file recordings under other teams. The body is read with the same
running size cap as audio uploads and never written to disk; calls are
recorded by the server's media engine (the renderer and sealer SIPREC calls
use) and the answer comes once they are sealed. Every upload, allowed or
refused, is in the access trail.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from callvault.api.deps import principal
from callvault.api.upload_form import read_upload_form
from callvault.errors import CallvaultError, Conflict, InvalidInput, PermissionDenied
from callvault.runtime.passive.pcap_import import SealJournal, import_capture
from callvault.services.access import Action, Principal, Scope, require
from callvault.services.call_record import IngestSource
from callvault.services.context import ServiceContext

router = APIRouter(prefix="/captures", tags=["captures"])

_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "tag": {"type": "array", "items": {"type": "string"}},
                    },
                }
            }
        }
    }
}


def _may_import(ctx: ServiceContext, caller: Principal) -> None:
    try:
        if require(caller, Action.RECORDING_UPLOAD) is not Scope.ALL:
            raise PermissionDenied("importing captures needs upload rights over every team")
    except PermissionDenied as exc:
        ctx.access_log.record(caller, "capture_import", detail=exc.message, outcome="denied")
        raise


@router.post(
    "",
    status_code=201,
    openapi_extra=_SCHEMA,
    summary="Import a packet capture: every SIP call in it is recorded",
    description="Answers `recording_ids`, `calls`, `sealed`, `frames`, `sip_messages`, `rtp_packets`, "
    "`unsignalled_packets`, `calls_lost` (answered calls the catalogue refused), `damage` (unusable frames by cause) and `error` (where a damaged file's "
    "read stopped). 415 for a file that is not a capture.",
)
async def import_capture_file(request: Request) -> dict[str, Any]:
    ctx: ServiceContext = request.app.state.ctx
    seal: SealJournal | None = getattr(request.app.state, "seal_journal", None)
    caller = await run_in_threadpool(principal, request)
    await run_in_threadpool(_may_import, ctx, caller)
    if seal is None:
        raise Conflict("this server has no media engine to record captures")
    try:
        form = await read_upload_form(request, ctx.settings.max_upload_bytes, "capture")
        unknown = sorted(set(form.fields) - {"tag"})
        if unknown:
            raise InvalidInput(f"unknown form fields: {', '.join(unknown)}; known: tag")
        if form.file is None:
            raise InvalidInput("form field 'file' is missing")
        source = IngestSource(
            "upload", user=caller.username, user_id=caller.user_id, address=caller.remote_addr
        )
        name = (form.filename or "capture")[:200]
        result = await import_capture(ctx, form.file, name, source, seal, tags=form.fields.get("tag", []))
    except CallvaultError as exc:
        await run_in_threadpool(
            ctx.access_log.record, caller, "capture_import", None, exc.message[:200], "refused"
        )
        raise
    detail = f"calls={len(result.recording_ids)}, frames={result.frames}" + (
        ", damaged" if result.error else ""
    )
    await run_in_threadpool(ctx.access_log.record, caller, "capture_import", None, detail)
    return result.to_json()
