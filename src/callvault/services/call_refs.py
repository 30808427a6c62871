"""Call references: what ``/api/v1/calls/{ref}/...`` names, resolved to recordings in scope.

A call-time control (PCI pause and resume, keep, consent) names the call the
way the system calling it knows it: a CTI or payment integration has the SIP
Call-ID or the vendor's call id (Cisco GUID, Avaya UCID, BroadWorks tracking
id, ... as catalogued in ``call_identifiers``), a desktop application has the
recording id. :meth:`CallRefs.resolve` accepts any of them.

One reference can name more than one recording: a call recorded by two SRCs,
or re-recorded after a transfer, shares its vendor id. Every recording of the
call in the caller's scope is returned, live ones first, so a pause reaches
every copy of the audio.

Scope is the access policy's (:func:`callvault.services.access.check_recording`):
a reference that is unknown and one outside the caller's scope give the same
:class:`NotFound`, so the answer is no oracle for which calls exist. Whether a
call is live (its media in the recorder's engine) is not known here: the
runtime adds that (:mod:`callvault.runtime.call_control`); this answers what the
catalogue says.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select

from callvault.db.catalog import Catalog
from callvault.db.models import CallIdentifier, Recording
from callvault.errors import InvalidInput, NotFound, PermissionDenied
from callvault.services.access import Action, Principal, check_recording, require

MAX_REF_LENGTH = 255  # call_identifiers.value
# Calls sharing one vendor id are few; a reference matching more is not a call's.
MAX_MATCHES = 20
# Recording statuses under which the call may still be running.
IN_PROGRESS = frozenset({"recording"})


@dataclass(frozen=True)
class CallRecordingRef:
    """One recording a call reference resolved to, as the catalogue has it."""

    recording_id: str
    call_id: str  # the catalogue's call (``calls.id``)
    status: str
    started_at: datetime
    source: str  # how it came in: "siprec", "import", ...

    @property
    def in_progress(self) -> bool:
        """The catalogue still says recording (whether the media is live, the runtime knows)."""
        return self.status in IN_PROGRESS


@dataclass(frozen=True)
class ResolvedCall:
    """A reference's recordings in the caller's scope, in progress first, then newest first."""

    ref: str
    matched_by: str  # "recording_id", "sip_call_id", "cisco_guid", "ucid", ...
    recordings: tuple[CallRecordingRef, ...]

    @property
    def primary(self) -> CallRecordingRef:
        return self.recordings[0]

    @property
    def recording_ids(self) -> list[str]:
        return [r.recording_id for r in self.recordings]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _is_recording_id(ref: str) -> bool:
    try:
        return str(uuid.UUID(ref)) == ref.lower()
    except ValueError:
        return False


class CallRefs:
    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    def resolve(self, principal: Principal, ref: str, action: Action = Action.CALL_CONTROL) -> ResolvedCall:
        """The recordings ``ref`` names that ``principal`` may ``action``.

        Raises PermissionDenied when the role may never ``action`` (which reveals
        nothing about the call), NotFound for an unknown or out-of-scope
        reference, InvalidInput for one that cannot be a reference at all.
        """
        require(principal, action)
        ref = ref.strip()
        if not ref or len(ref) > MAX_REF_LENGTH or not ref.isprintable():
            raise InvalidInput(
                f"a call reference is 1-{MAX_REF_LENGTH} printable characters: a recording id, "
                "the SIP Call-ID or a vendor call id"
            )
        with self._catalog.read() as session:
            rows: list[Recording] = []
            matched_by = "recording_id"
            if _is_recording_id(ref):
                found = session.get(Recording, ref.lower())
                rows = [found] if found is not None else []
            if not rows:
                kinds = session.execute(
                    select(CallIdentifier.kind, CallIdentifier.call_id)
                    .where(CallIdentifier.value == ref)
                    .limit(MAX_MATCHES)
                ).all()
                if kinds:
                    matched_by = str(kinds[0][0])
                    call_ids = {str(call_id) for _, call_id in kinds}
                    rows = list(
                        session.scalars(
                            select(Recording).where(Recording.call_id.in_(call_ids)).limit(MAX_MATCHES)
                        )
                    )
            allowed = [r for r in rows if _in_scope(principal, action, r)]
            recordings = [
                CallRecordingRef(r.id, r.call_id, r.status, _aware(r.started_at), r.call.source)
                for r in allowed
            ]
        if not recordings:
            raise NotFound("call not found")
        recordings.sort(key=lambda r: (not r.in_progress, -r.started_at.timestamp(), r.recording_id))
        return ResolvedCall(ref, matched_by, tuple(recordings))


def _in_scope(principal: Principal, action: Action, recording: Recording) -> bool:
    try:
        check_recording(principal, action, recording)
    except (NotFound, PermissionDenied):
        return False
    return True
