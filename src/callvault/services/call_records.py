"""Storing call records (expected calls) from the PBX/ACD, idempotent on the PBX call id.

A batch is validated whole first (:mod:`callvault.services.call_record_input`),
then written in one transaction with one audit entry: sending the same batch
again changes nothing (``unchanged``); a record whose values changed (a
corrected CDR) is updated and reconciled again. The agent is resolved to a
user (by username or any SIP identity, through the agent directory) and
their team when the record arrives, so the report can be scoped and grouped
without the directory. Numbers are normalised (E.164 where they are numbers)
and stored only as keyed hashes (:func:`number_hash`): matching needs only
equality, and the catalogue keeps no second copy of customers' numbers. They
appear in no log line and no audit entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callvault.crypto.personal_hash import PersonalHasher
from callvault.db.assurance_models import ExpectedCall
from callvault.db.catalog import Catalog
from callvault.services.access import Action, Principal, require
from callvault.services.audit import AccessLog
from callvault.services.audit_log import lock_chain
from callvault.services.call_record_input import CallRecordInput
from callvault.services.directory import AgentDirectory
from callvault.services.phone import normalise_number

PENDING = "pending"
_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_CHUNK = 500  # ids per IN (...) lookup
_VALUES = (
    "started_at",
    "ended_at",
    "direction",
    "calling_hash",
    "called_hash",
    "agent",
    "agent_user_id",
    "team_id",
    "queue",
    "sip_call_id",
    "vendor_call_id",
)


@dataclass(frozen=True)
class Stored:
    created: int
    updated: int
    unchanged: int
    ids: list[int]  # rows created or updated: the ones to reconcile

    def to_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def number_hash(hasher: PersonalHasher, raw: str | None, region: str) -> str | None:
    """The keyed hash a number is stored and compared as (E.164 first where it is a number)."""
    if not raw:
        return None
    # Already E.164 (as the catalogue stores numbers): what normalising would give, without its cost.
    e164 = raw if _E164.match(raw) else normalise_number(raw, region)
    return hasher.digest("phone", e164 or raw.strip())


def forget_number(session: Session, subject_hash: str) -> int:
    """Erasure of a person's number (GDPR Art. 17): drop its hash from every call record.

    ``subject_hash`` is the erasure request's keyed hash of the number, the same
    as :func:`number_hash`'s. The records stay (they are the PBX's, and the
    assurance report still counts them); they can no longer be tied to the
    person, nor matched by that number again. Returns how many records changed.
    """
    changed = 0
    for column in (ExpectedCall.calling_hash, ExpectedCall.called_hash):
        result = session.execute(
            update(ExpectedCall).where(column == subject_hash).values({column.key: None})
        )
        changed += int(getattr(result, "rowcount", 0) or 0)
    return changed


class CallRecordStore:
    def __init__(
        self,
        catalog: Catalog,
        directory: AgentDirectory,
        access_log: AccessLog,
        hasher: PersonalHasher,
        region: str,
    ) -> None:
        self._catalog = catalog
        self._directory = directory
        self._log = access_log
        self._hasher = hasher
        self._region = region

    def store(self, principal: Principal, records: list[CallRecordInput], source: str) -> Stored:
        """Write ``records`` (valid, unique by PBX call id) in one transaction; audited."""
        require(principal, Action.CALL_RECORDS_SUBMIT)
        values = [self._row_values(r) for r in records]
        created = updated = unchanged = 0
        touched: list[ExpectedCall] = []
        now = datetime.now(UTC)
        with self._catalog.write() as session:
            lock_chain(session)  # one writer of these rows at a time: no duplicate on a race
            existing: dict[str, ExpectedCall] = {}
            keys = [r.pbx_call_id for r in records]
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start : start + _CHUNK]
                rows = session.scalars(select(ExpectedCall).where(ExpectedCall.pbx_call_id.in_(chunk)))
                existing.update({row.pbx_call_id: row for row in rows})
            for record, new in zip(records, values, strict=True):
                row = existing.get(record.pbx_call_id)
                if row is None:
                    row = ExpectedCall(
                        pbx_call_id=record.pbx_call_id, received_at=now, outcome=PENDING, **new
                    )
                    session.add(row)
                    created += 1
                elif _differs(row, new):
                    for name, value in new.items():
                        setattr(row, name, value)
                    row.received_at, row.outcome, row.recording_id = now, PENDING, None
                    row.matched_by, row.ambiguous, row.reconciled_at = None, False, None
                    updated += 1
                else:
                    unchanged += 1
                    continue
                touched.append(row)
            session.flush()
            ids = [row.id for row in touched]
            detail = f"source={source} received={len(records)} created={created} updated={updated} unchanged={unchanged}"
            self._log.record_in(session, principal, "call_records_import", detail=detail)
        return Stored(created, updated, unchanged, ids)

    def _row_values(self, record: CallRecordInput) -> dict[str, Any]:
        user_id = self._directory.resolve_user(record.agent) if record.agent else None
        return {
            "started_at": record.started_at,
            "ended_at": record.ended_at,
            "direction": record.direction,
            "calling_hash": number_hash(self._hasher, record.calling_number, self._region),
            "called_hash": number_hash(self._hasher, record.called_number, self._region),
            "agent": record.agent,
            "agent_user_id": user_id,
            "team_id": self._directory.team_of(user_id),
            "queue": record.queue,
            "sip_call_id": record.sip_call_id,
            "vendor_call_id": record.vendor_call_id,
        }


def _differs(row: ExpectedCall, new: dict[str, Any]) -> bool:
    for name in _VALUES:
        old = getattr(row, name)
        if isinstance(old, datetime):
            old = _aware(old)
        if old != new[name]:
            return True
    return False
