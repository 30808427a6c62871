"""``/api/v1/recordings/{id}/comments`` and ``/peaks``: what the recording page shows beside the audio.

Comments are pinned to a moment of the call (``offset_seconds``); peaks are
the waveform envelope per channel (agent, customer), scaled down to at most
``points`` values per channel for drawing.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from callvault.api.deps import context, principal
from callvault.media.peaks import downsample
from callvault.services.access import Principal
from callvault.services.comments import MAX_COMMENT
from callvault.services.context import ServiceContext

router = APIRouter(prefix="/recordings", tags=["recordings"])
Ctx = Annotated[ServiceContext, Depends(context)]
Caller = Annotated[Principal, Depends(principal)]
MAX_POINTS = 20000


class NewComment(BaseModel):
    offset_seconds: float = Field(ge=0, le=10.0**7, description="Seconds from the start of the recording.")
    body: str = Field(min_length=1, max_length=MAX_COMMENT)


@router.get("/{recording_id}/comments")
def list_comments(recording_id: str, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"items": [c.to_dict() for c in ctx.comments.list(caller, recording_id)]}


@router.post("/{recording_id}/comments", status_code=201)
def add_comment(recording_id: str, comment: NewComment, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    offset = comment.offset_seconds if math.isfinite(comment.offset_seconds) else -1.0
    return ctx.comments.add(caller, recording_id, offset, comment.body).to_dict()


@router.get("/{recording_id}/peaks")
def get_peaks(
    recording_id: str,
    ctx: Ctx,
    caller: Caller,
    points: Annotated[int, Query(ge=1, le=MAX_POINTS)] = 2000,
) -> dict[str, Any]:
    """``{"duration", "bucket_seconds", "lanes": [[0..255, ...], ...]}``: lane 0 the agent (left), 1 the customer."""
    peaks = ctx.waveforms.peaks(caller, recording_id)
    lanes = [downsample(lane, points) for lane in peaks.lanes()]
    width = len(lanes[0]) if lanes else 0
    return {
        "duration": peaks.duration_seconds,
        "bucket_seconds": peaks.duration_seconds / width if width else peaks.bucket_seconds,
        "lanes": lanes,
    }
