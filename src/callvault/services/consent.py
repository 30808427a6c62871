"""Consent state per call and party: ``unknown``, ``notified``, ``consented``, ``objected``.

A party is named ``customer`` or ``agent`` (the side of the call, what a
desktop or an IVR knows), or by a participant's E.164 number or address of
record where a call has several parties on one side. Each change is stored in
``call_consents`` with where it came from (``api``, ``metadata`` from the SRC,
``dtmf`` from the caller's keypad), who made it and when, and audited in the
same transaction: nothing is applied that the audit log does not show.

The recording's ``consent_state`` sums its parties up for search and
retention: ``objected`` if any party objected, ``consented`` when every party
named consented, ``notified`` when each was at least notified, else
``unknown``. What an objection does to the audio is the runtime's
(:mod:`callvault.runtime.consent_control`); this module says which sides of
the call are objecting.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from callvault.db.catalog import Catalog
from callvault.db.consent_models import CONSENT_STATES, CallConsent
from callvault.db.models import Participant, Recording
from callvault.errors import InvalidInput, NotFound
from callvault.services.access import Principal
from callvault.services.audit import AccessLog
from callvault.services.phone import mask_number, normalise_number

SIDES = ("customer", "agent")
SOURCES = ("api", "metadata", "dtmf")
ACTION = "call_consent"
MAX_PARTY = 64


def parse_state(value: object) -> str:
    if not isinstance(value, str) or value not in CONSENT_STATES:
        raise InvalidInput(f"state must be one of {', '.join(CONSENT_STATES)}")
    return value


def parse_party(value: object) -> str:
    """``customer`` (the default), ``agent``, or a participant's number or address of record."""
    if value is None:
        return "customer"
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_PARTY or not value.isprintable():
        raise InvalidInput(
            f"party is customer, agent, or a participant's number or address (at most {MAX_PARTY} characters)"
        )
    party = value.strip()
    return party.lower() if party.lower() in SIDES else party


def summary(states: list[str]) -> str:
    """The call's consent from its parties' states."""
    if "objected" in states:
        return "objected"
    if states and all(s == "consented" for s in states):
        return "consented"
    if states and all(s in ("consented", "notified") for s in states):
        return "notified"
    return "unknown"


def shown(party: str) -> str:
    """A party as the audit log shows it: a number masked."""
    return party if party in SIDES else mask_number(party)


@dataclass(frozen=True)
class ConsentChange:
    """A party's consent after a change, and the sides of the call now objecting."""

    recording_id: str
    party: str
    side: str  # customer, agent or other
    state: str
    previous: str | None
    call_state: str
    objecting_sides: frozenset[str]
    parties: tuple[dict[str, Any], ...]

    @property
    def changed(self) -> bool:
        return self.state != self.previous

    def to_dict(self) -> dict[str, Any]:
        return {
            "recording_id": self.recording_id,
            "party": self.party,
            "state": self.state,
            "consent_state": self.call_state,
            "parties": list(self.parties),
        }


class ConsentStates:
    def __init__(self, catalog: Catalog, access_log: AccessLog, region: str) -> None:
        self._catalog = catalog
        self._log = access_log
        self._region = region

    def set(
        self, principal: Principal, recording_id: str, party: str, state: str, source: str
    ) -> ConsentChange:
        """Store ``party``'s ``state`` on the recording (the caller checked scope and liveness)."""
        party, state = parse_party(party), parse_state(state)
        if source not in SOURCES:
            raise InvalidInput(f"source must be one of {', '.join(SOURCES)}")
        with self._catalog.write() as session:
            recording = session.get(Recording, recording_id, with_for_update=True)
            if recording is None:
                raise NotFound("call not found")
            participants = list(
                session.scalars(select(Participant).where(Participant.call_id == recording.call_id))
            )
            party, side = self._party(party, participants)
            row = session.get(CallConsent, (recording_id, party))
            previous = row.state if row is not None else None
            if row is None:
                row = CallConsent(recording_id=recording_id, party=party)
                session.add(row)
            row.state, row.source = state, source
            row.changed_at, row.changed_by = datetime.now(UTC), principal.username
            session.flush()
            rows = list(session.scalars(select(CallConsent).where(CallConsent.recording_id == recording_id)))
            recording.consent_state = summary([r.state for r in rows])
            detail = f"party={shown(party)} state={state} source={source}"
            self._log.record_in(session, principal, ACTION, recording_id, detail)
            sides = {r.party: self._side_of(r.party, participants) for r in rows}
            return ConsentChange(
                recording_id,
                party,
                side,
                state,
                previous,
                recording.consent_state,
                frozenset(sides[r.party] for r in rows if r.state == "objected"),
                tuple(_view(r) for r in sorted(rows, key=lambda r: r.party)),
            )

    def parties(self, recording_id: str) -> list[dict[str, Any]]:
        """Each party's consent on a recording (for its detail view)."""
        with self._catalog.read() as session:
            rows = session.scalars(
                select(CallConsent)
                .where(CallConsent.recording_id == recording_id)
                .order_by(CallConsent.party)
            )
            return [_view(r) for r in rows]

    def _party(self, party: str, participants: list[Participant]) -> tuple[str, str]:
        """The party's stored name and side; a participant is named by its number when it has one."""
        if party in SIDES:
            return party, party
        number = normalise_number(party, self._region)
        for p in participants:
            if (number is not None and p.number == number) or (p.aor is not None and p.aor == party):
                name = p.number or p.aor or party
                return name[:MAX_PARTY], _side(p.role)
        raise InvalidInput("party is neither customer, agent nor a participant of the call")

    @staticmethod
    def _side_of(party: str, participants: list[Participant]) -> str:
        if party in SIDES:
            return party
        for p in participants:
            if party in (p.number, p.aor):
                return _side(p.role)
        return "other"


def consent_parties(session: Session, recording_id: str) -> list[dict[str, Any]]:
    """Each party's consent on a recording (its detail view)."""
    rows = session.scalars(
        select(CallConsent).where(CallConsent.recording_id == recording_id).order_by(CallConsent.party)
    )
    return [_view(r) for r in rows]


def _side(role: str) -> str:
    return role if role in SIDES else "other"


def _view(row: CallConsent) -> dict[str, Any]:
    return {
        "party": row.party,
        "state": row.state,
        "source": row.source,
        "changed_at": row.changed_at.isoformat() if row.changed_at else None,
        "changed_by": row.changed_by,
    }
