"""The one place that says whether a recording may be deleted.

Every path that destroys audio (retention, erasure, ``destroy-audio``, any
role) asks here inside its own write transaction, so a hold created a moment
earlier is always seen. A held recording answers 409 naming the hold; erasure
additionally keeps what a ``legal_obligation`` policy still keeps.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.compliance_models import LegalHold
from callvault.db.models import Recording
from callvault.errors import Conflict
from callvault.services.hold_criteria import condition
from callvault.services.retention_rules import PolicyRule, RecordingFacts, obligation_until

ACTIVE = ("active", "release_pending")
_CHUNK = 500


def held_by(session: Session, recording_ids: list[str]) -> dict[str, str]:
    """Recording id → name of the (oldest) active hold covering it, for the ids given."""
    held: dict[str, str] = {}
    if not recording_ids:
        return held
    holds = session.scalars(select(LegalHold).where(LegalHold.status.in_(ACTIVE)).order_by(LegalHold.id))
    for hold in holds:
        for start in range(0, len(recording_ids), _CHUNK):
            chunk = recording_ids[start : start + _CHUNK]
            query = select(Recording.id).where(Recording.id.in_(chunk), condition(hold.resolved))
            for recording_id in session.scalars(query):
                held.setdefault(recording_id, hold.name)
    return held


def ensure_not_held(session: Session, recording_id: str) -> None:
    """Raise Conflict (409) naming the hold if ``recording_id`` is under an active legal hold."""
    hold = held_by(session, [recording_id]).get(recording_id)
    if hold is not None:
        raise Conflict(f"recording {recording_id} is under legal hold {hold!r}; it cannot be deleted")


def erasure_block(
    session: Session, rules: list[PolicyRule], facts: RecordingFacts, now: datetime
) -> str | None:
    """Why an erasure request may not delete this recording now (hold or legal obligation), or None."""
    hold = held_by(session, [facts.id]).get(facts.id)
    if hold is not None:
        return f"legal hold {hold!r}"
    obligation = obligation_until(rules, facts)
    if obligation is not None and obligation[0] > now:
        until, policy = obligation
        return f"legal obligation: policy {policy!r} keeps it until {until.date().isoformat()}"
    return None
