"""``/api/v1/calls/{ref}``: controls of a call in progress (PCI pause and resume, its state).

``ref`` is the recording id, the SIP Call-ID or a vendor call id (Cisco GUID,
Avaya UCID, BroadWorks tracking id, ...). Allowed to the call's agent, their
supervisor, admins and ``integration`` accounts (see
:mod:`callvault.services.access`); an unknown call and one outside the
caller's scope both answer 404. A call that has ended, or was never recorded,
answers 409, as does a resume without a pause.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.concurrency import run_in_threadpool

from callvault.api.deps import principal
from callvault.runtime.call_control import CallControl
from callvault.services.call_refs import MAX_REF_LENGTH

router = APIRouter(prefix="/calls", tags=["calls"])

Ref = Annotated[
    str,
    Path(
        max_length=MAX_REF_LENGTH,
        description="Recording id, SIP Call-ID or vendor call id (Cisco GUID, UCID, ...)",
    ),
]

_STATE = (
    "`recording_id` (the live recording; `recording_ids` when the call is recorded more than once), "
    "`live`, `state` (`recording`, `paused`, `not_recorded` for a live call a recording rule keeps off "
    "disk, or `ended`) and `silences` (cause, channels, since, by, "
    "resumes_at)."
)


def _calls(request: Request) -> CallControl:
    calls: CallControl = request.app.state.calls
    return calls


@router.get("/{ref}", summary="State of a call: live, paused or ended", description=_STATE)
async def call_state(ref: Ref, request: Request) -> dict[str, Any]:
    caller = await run_in_threadpool(principal, request)
    return await _calls(request).state(caller, ref)


@router.post(
    "/{ref}/pause",
    summary="PCI pause: keep the call's audio off the disk until resumed",
    description="Silence of the same length stands in the recording; the pause resumes by itself after "
    "CALLVAULT_PCI_PAUSE_MAX_SECONDS. Pausing a paused call renews that deadline. Answers " + _STATE,
)
async def pause_call(ref: Ref, request: Request) -> dict[str, Any]:
    caller = await run_in_threadpool(principal, request)
    return await _calls(request).pause(caller, ref)


@router.post(
    "/{ref}/keep",
    summary="Keep an on-demand call's audio",
    description="For calls an `on_demand` recording rule holds in the encrypted spool: during the call or "
    "up to CALLVAULT_ON_DEMAND_KEEP_SECONDS after it; otherwise the audio is discarded and the call "
    "catalogued `not_kept`. Answers `recording_id`, `recording_ids`, `live`, `state` (`kept`), `kept_at`. "
    "409 for a call not recorded on demand, one whose keep time has passed, or one not recorded.",
)
async def keep_call(ref: Ref, request: Request) -> dict[str, Any]:
    caller = await run_in_threadpool(principal, request)
    return await _calls(request).keep(caller, ref)


@router.post(
    "/{ref}/resume",
    summary="End a PCI pause",
    description="409 when the call is not paused by a request (a pause on keypad digits ends by itself). "
    "Answers " + _STATE,
)
async def resume_call(ref: Ref, request: Request) -> dict[str, Any]:
    caller = await run_in_threadpool(principal, request)
    return await _calls(request).resume(caller, ref)
