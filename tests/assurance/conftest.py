"""Catalogued calls for assurance tests, written as rows: the statuses recording rules
leave (``not_recorded``, ``not_kept``) need no rule engine to be tested against."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

from callvault.db.models import Call, CallIdentifier, Recording, User
from callvault.services.context import ServiceContext

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
CUSTOMER = "+14155550199"
OTHER_CUSTOMER = "+14155550188"


@dataclass
class Catalogued:
    status: str = "complete"
    started_at: datetime = T0
    agent: str | None = "alice"
    customer: str | None = CUSTOMER
    identifiers: dict[str, str] = field(default_factory=dict)  # kind -> value


def catalogue(ctx: ServiceContext, call: Catalogued) -> str:
    """Write a call and its recording as the recorder would catalogue them; returns the recording id."""
    call_id, recording_id = str(uuid.uuid4()), str(uuid.uuid4())
    with ctx.catalog.write() as session:
        user = session.scalar(select(User).where(User.username == call.agent)) if call.agent else None
        session.add(
            Call(
                id=call_id,
                direction="inbound",
                started_at=call.started_at,
                calling_number=call.customer,
                called_number="+14155550100",
                source="siprec",
            )
        )
        for kind, value in call.identifiers.items():
            session.add(CallIdentifier(call_id=call_id, kind=kind, value=value))
        session.add(
            Recording(
                id=recording_id,
                call_id=call_id,
                status=call.status,
                started_at=call.started_at,
                direction="inbound",
                customer_number=call.customer,
                agent_user_id=user.id if user else None,
                team_id=user.team_id if user else None,
                format="ogg-opus",
                created_at=call.started_at,
            )
        )
    return recording_id


def must_record(ctx: ServiceContext, username: str) -> None:
    with ctx.catalog.write() as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        user.must_record = True
