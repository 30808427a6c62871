"""Who a data subject is, and which recordings are theirs (GDPR Art. 15 and 17).

A subject is named the way a request arrives: a phone number in any format
(``+1 415 555 0100``, ``(415) 555-0100``, ``sip:+14155550100@sbc``), an email
address, or an external customer id. This is the one place that turns such a
name into the calls and recordings it appears in; access requests (zip for
handing over) and erasure requests both use it, so they always agree on what
"this person's recordings" means.

Matching:

- ``phone``: the E.164 form (:func:`normalise_number`) against the recording's
  customer number, every participant's number, and the call's calling and
  called numbers.
- ``email``: case-insensitive against participant AORs written as the address
  itself or as ``sip:``/``sips:``/``mailto:`` URIs of it.
- ``customer_id``: exact against the call's external identifiers (vendor and
  CRM ids carried in SIPREC metadata), never against SIP Call-IDs.

No access check happens here: callers decide who may ask (a compliance task,
not a per-recording scope).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, CompoundSelect, Select, func, or_, select
from sqlalchemy.orm import Session

from callvault.crypto.personal_hash import PersonalHasher
from callvault.db.models import Call, CallIdentifier, Participant, Recording
from callvault.errors import InvalidInput
from callvault.services.phone import normalise_number

SubjectKind = Literal["phone", "email", "customer_id"]
KINDS: tuple[SubjectKind, ...] = ("phone", "email", "customer_id")
_EMAIL = re.compile(r"^[^@\s<>;:]{1,64}@[^@\s<>;:]{1,255}$")
_MAX_ID = 255


@dataclass(frozen=True)
class Subject:
    """A data subject in canonical form: E.164 number, lower-case email, or exact customer id."""

    kind: SubjectKind
    value: str

    @classmethod
    def parse(cls, raw: object, region: str = "US") -> Subject:
        """From the API shape ``{"phone"|"email"|"customer_id": "..."}`` (exactly one key)."""
        if not isinstance(raw, Mapping):
            raise InvalidInput("subject needs exactly one of: phone, email, customer_id")
        present = [(k, v) for k, v in raw.items() if v not in (None, "")]
        if len(present) != 1 or present[0][0] not in KINDS:
            raise InvalidInput("subject needs exactly one of: phone, email, customer_id")
        kind, value = present[0]
        if not isinstance(value, str):
            raise InvalidInput(f"subject {kind} must be a string")
        return cls.of(kind, value, region)

    @classmethod
    def of(cls, kind: str, value: str, region: str = "US") -> Subject:
        cleaned = value.strip()
        if kind == "phone":
            number = normalise_number(cleaned, region)
            if number is None:
                raise InvalidInput("subject phone is not a phone number")
            return cls("phone", number)
        if kind == "email":
            lowered = cleaned.lower().removeprefix("mailto:")
            if not _EMAIL.match(lowered):
                raise InvalidInput("subject email is not an email address")
            return cls("email", lowered)
        if kind == "customer_id":
            if not cleaned or len(cleaned) > _MAX_ID:
                raise InvalidInput(f"subject customer_id must be 1 to {_MAX_ID} characters")
            return cls("customer_id", cleaned)
        raise InvalidInput("subject needs exactly one of: phone, email, customer_id")

    def masked(self, hasher: PersonalHasher) -> str:
        """For audit details: the kind and a short keyed hash, never the number or address.

        Keyed (the installation's personal-data key, as in tombstones and deletion
        certificates): a plain hash of a phone number is reversed by trying them all.
        """
        return f"{self.kind}:{hasher.digest(self.kind, self.value)[:16]}"


@dataclass(frozen=True)
class SubjectRecording:
    recording_id: str
    call_id: str
    status: str
    # True when the subject is the only outside party (not one of several customers).
    sole_party: bool


def find_subject_recordings(session: Session, subject: Subject) -> list[SubjectRecording]:
    """Every recording the subject appears in, oldest first (works inside a write transaction)."""
    call_ids = set(session.scalars(_matching_calls(subject)))
    if not call_ids:
        return []
    rows = session.execute(
        select(Recording.id, Recording.call_id, Recording.status)
        .where(Recording.call_id.in_(call_ids))
        .order_by(Recording.started_at, Recording.id)
    ).all()
    parties = outside_parties(session, call_ids)
    return [SubjectRecording(rid, cid, status, parties.get(cid, 0) <= 1) for rid, cid, status in rows]


def recording_condition(subject: Subject) -> ColumnElement[bool]:
    """A WHERE clause on ``Recording`` selecting the subject's recordings (for bulk callers)."""
    return Recording.call_id.in_(_matching_calls(subject))


def _matching_calls(subject: Subject) -> Select[str] | CompoundSelect[str]:
    if subject.kind == "phone":
        number = subject.value
        by_recording = select(Recording.call_id).where(Recording.customer_number == number)
        by_participant = select(Participant.call_id).where(Participant.number == number)
        by_call = select(Call.id).where(or_(Call.calling_number == number, Call.called_number == number))
        return by_recording.union(by_participant, by_call)
    if subject.kind == "email":
        forms = [subject.value, *(f"{scheme}:{subject.value}" for scheme in ("sip", "sips", "mailto"))]
        return select(Participant.call_id).where(func.lower(Participant.aor).in_(forms))
    return select(CallIdentifier.call_id).where(
        CallIdentifier.value == subject.value, CallIdentifier.kind != "sip_call_id"
    )


def outside_parties(session: Session, call_ids: set[str]) -> dict[str, int]:
    """Number of non-agent participants per call, to tell sole-party from multi-party calls.

    By role, not by a linked user: an agent whose identity is not (yet) known to the
    directory is still the agent, not a second customer.
    """
    rows = session.execute(
        select(Participant.call_id, func.count())
        .where(Participant.call_id.in_(call_ids), Participant.role != "agent")
        .group_by(Participant.call_id)
    ).all()
    return {cid: int(n) for cid, n in rows}
