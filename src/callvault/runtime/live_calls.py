"""What the live calls page shows: the calls being recorded now that the viewer may see,
with each stream's packets received, expected and lost so far, and the recorder's health
(SIP per transport, open calls, finalisation backlog, storage left at the current rate).

A live call is a recording in status ``recording`` whose media session is open
in this server's engine; the viewer's search scope (own, team, all) applies as
it does to finished recordings.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from callvault.db.models import Recording, User
from callvault.runtime.call_control import CallControl
from callvault.services.access import Action, Principal, recording_scope
from callvault.services.context import ServiceContext
from callvault.services.manifest import iso

RATE_WINDOW = timedelta(days=7)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def live_calls(ctx: ServiceContext, calls: CallControl, principal: Principal) -> list[dict[str, Any]]:
    sessions = calls.live_sessions()
    if not sessions:
        return []
    now = datetime.now(UTC)
    with ctx.catalog.read() as session:
        rows = session.execute(
            select(Recording, User.username)
            .outerjoin(User, User.id == Recording.agent_user_id)
            .where(
                Recording.id.in_(list(sessions)),
                Recording.status == "recording",
                recording_scope(principal, Action.RECORDING_SEARCH),
            )
            .order_by(Recording.started_at)
        ).all()
    answer = []
    for recording, agent in rows:
        media = sessions.get(recording.id)
        streams = media.streams if media is not None else []
        loss = calls.live_loss(recording.id)
        started = _aware(recording.started_at)
        answer.append(
            {
                "id": recording.id,
                "agent": agent,
                "customer": recording.customer_number,
                "direction": recording.direction,
                "started_at": iso(started),
                "seconds": max(0.0, (now - started).total_seconds()),
                "streams": [_stream(s.label, s.on_hold, loss.get(s.index)) for s in streams],
            }
        )
    return answer


def _stream(label: str, on_hold: bool, loss: dict[str, int] | None) -> dict[str, Any]:
    """A stream's line: its packet figures are None where capture does not measure them."""
    figures: dict[str, int | None] = {"received": None, "expected": None, "lost": None}
    figures.update(loss or {})
    expected, lost = figures["expected"], figures["lost"]
    share = None
    if expected is not None and lost is not None:
        share = round(100.0 * lost / expected, 1) if expected else 0.0
    return {"label": label, "on_hold": on_hold, **figures, "loss_percent": share}


def recorder_health(
    ctx: ServiceContext,
    sip_listening: bool,
    open_calls: int,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Storage used by the vault's audio, free disk under the data directory, and days left
    at the last week's rate (None when nothing was recorded in the week); from ``extra`` (the
    running server's health) SIP per transport and the finalisation backlog."""
    extra = extra or {}
    since = datetime.now(UTC) - RATE_WINDOW
    with ctx.catalog.read() as session:
        used = session.scalar(select(func.coalesce(func.sum(Recording.audio_size), 0))) or 0
        recent = (
            session.scalar(
                select(func.coalesce(func.sum(Recording.audio_size), 0)).where(Recording.started_at >= since)
            )
            or 0
        )
    free = shutil.disk_usage(ctx.settings.data_dir).free
    per_day = recent / RATE_WINDOW.days
    return {
        "sip": "listening" if sip_listening else "not listening",
        "sip_transports": dict(extra.get("sip_transports") or {}),
        "open_calls": open_calls,
        "finalise_backlog": int(extra.get("finalise_backlog") or 0),
        "storage_used_bytes": int(used),
        "disk_free_bytes": int(free),
        "days_left": round(free / per_day, 1) if per_day > 0 else None,
        "checked_at": time.time(),
    }
