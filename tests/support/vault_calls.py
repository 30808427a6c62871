"""Sealed recordings straight through the recording service, for compliance tests that need many.

The audio is arbitrary bytes (retention never decodes it): what matters is the
real path of sealing: data key, encrypted object, signed manifest, seal log.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from callvault.services.call_record import ArchiveAudio, CallRecord, ParticipantRecord, StreamRecord
from callvault.services.context import ServiceContext


def seal_call(
    ctx: ServiceContext,
    *,
    days_ago: float = 0.0,
    customer: str | None = "+14155550100",
    queue: str | None = None,
    direction: str = "inbound",
    tags: list[str] | None = None,
    agent_aor: str | None = None,
    extra_parties: list[str] | None = None,
    sip_call_id: str | None = None,
    external_ids: dict[str, str] | None = None,
    size: int = 4000,
) -> str:
    started = datetime.now(UTC) - timedelta(days=days_ago)
    participants = [ParticipantRecord(aor=customer, role="customer")] if customer else []
    if agent_aor:
        participants.append(ParticipantRecord(aor=agent_aor, role="agent"))
    for party in extra_parties or []:
        participants.append(ParticipantRecord(aor=party, role="other"))
    call = CallRecord(
        started_at=started,
        source="import",
        direction=direction,  # type: ignore[arg-type]
        calling_number=customer,
        called_number="+14155559999",
        queue=queue,
        sip_call_ids=[sip_call_id] if sip_call_id else [],
        external_ids=external_ids or {},
        tags=tags or [],
        participants=participants,
    )
    audio = ArchiveAudio(os.urandom(size), 8000, 2, 3.0)
    streams = [StreamRecord("agent", "PCMU", 0), StreamRecord("customer", "PCMU", 1)]
    return ctx.recordings.store_new(call, audio, streams)
