"""Recording assurance: was every call the PBX/ACD reported recorded, and whole?

Reconciliation takes expected calls (call records, see
:mod:`callvault.services.call_records`), finds each one's recording
(:mod:`callvault.services.assurance_match`: by call id, else by numbers and
start time within ``tolerance``) and stores the outcome on the record:

- ``recorded_complete``, ``incomplete``, ``interrupted``: the recording's status;
- ``not_recorded_by_rule``: a catalogued call whose audio a recording rule left
  out (status ``not_recorded``, or ``not_kept`` for an on-demand call nobody kept);
- ``missing``: no recording at all;
- ``pending``: not decided yet: the recording is still running, or the call
  ended less than ``grace`` ago and its recording may not be catalogued yet.

A must-record agent's call (the user's ``must_record`` flag) that is missing,
not recorded by a rule, incomplete or interrupted raises an alert, once per
call: the flag on the record is set in the same transaction as the alert.
Alerts about a recording carry its id, so whoever else notices the same
recording (the recorder at call end) raises no second one.

Each run sets the Prometheus gauges of the last reconciliation (outcome
counts of the calls it looked at, unless it looked at none, and when), and
writes an audit entry when it changed anything.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from callvault.crypto.personal_hash import PersonalHasher
from callvault.db.assurance_models import ExpectedCall
from callvault.db.catalog import Catalog
from callvault.db.models import Call, CallIdentifier, Recording, User
from callvault.services.access import Action, Principal, require
from callvault.services.alerts import (
    ALERTS_RAISED,
    MUST_RECORD_INCOMPLETE,
    MUST_RECORD_NOT_RECORDED,
    AlertService,
    NewAlert,
)
from callvault.services.assurance_match import Candidate, Expected, Match, match_calls
from callvault.services.audit import AccessLog
from callvault.services.call_records import number_hash
from callvault.services.manifest import iso

log = logging.getLogger(__name__)

RECORDED_COMPLETE = "recorded_complete"
INCOMPLETE = "incomplete"
INTERRUPTED = "interrupted"
NOT_RECORDED_BY_RULE = "not_recorded_by_rule"
MISSING = "missing"
PENDING = "pending"
OUTCOMES = (RECORDED_COMPLETE, INCOMPLETE, INTERRUPTED, NOT_RECORDED_BY_RULE, MISSING, PENDING)
# Recording statuses of a catalogued call whose audio a rule left out (recording rules).
RULE_STATUSES = frozenset({"not_recorded", "not_kept"})
_ALERT_KIND = {
    MISSING: MUST_RECORD_NOT_RECORDED,
    NOT_RECORDED_BY_RULE: MUST_RECORD_NOT_RECORDED,
    INCOMPLETE: MUST_RECORD_INCOMPLETE,
    INTERRUPTED: MUST_RECORD_INCOMPLETE,
}
_CHUNK = 1000  # records reconciled per transaction

LAST_OUTCOMES = Gauge(
    "callvault_assurance_last_calls",
    "Expected calls by outcome in the last reconciliation",
    ["outcome"],
)
LAST_RUN = Gauge(
    "callvault_assurance_last_reconciliation_timestamp_seconds",
    "When the last reconciliation of call records with recordings finished (Unix time)",
)


def outcome_of(status: str | None) -> str:
    """The assurance outcome of an expected call whose (best) recording has ``status``."""
    if status is None:
        return MISSING
    if status == "complete":
        return RECORDED_COMPLETE
    if status in RULE_STATUSES:
        return NOT_RECORDED_BY_RULE
    if status == "recording":
        return PENDING
    if status == "interrupted":
        return INTERRUPTED
    # "incomplete", and any status this version does not know: something short of whole.
    return INCOMPLETE


@dataclass(frozen=True)
class Period:
    """Calls started in [start, end); either may be open."""

    start: datetime | None = None
    end: datetime | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.start is not None:
            found.append(ExpectedCall.started_at >= self.start.astimezone(UTC))
        if self.end is not None:
            found.append(ExpectedCall.started_at < self.end.astimezone(UTC))
        return found


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Reconciler:
    def __init__(
        self,
        catalog: Catalog,
        alerts: AlertService,
        access_log: AccessLog,
        hasher: PersonalHasher,
        region: str,
        tolerance_seconds: float,
        grace_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._catalog = catalog
        self._alerts = alerts
        self._log = access_log
        self._hasher = hasher
        self._region = region
        self._tolerance = timedelta(seconds=tolerance_seconds)
        self._grace = timedelta(seconds=grace_seconds)
        self._clock = clock

    def reconcile(
        self,
        principal: Principal,
        ids: Sequence[int] | None = None,
        period: Period | None = None,
        undecided_only: bool = False,
    ) -> dict[str, Any]:
        """Reconcile the records ``ids``, or those of ``period`` (all: neither); ``undecided_only``
        keeps to records still ``pending`` or ``missing``. Returns the outcome counts."""
        require(principal, Action.CALL_RECORDS_SUBMIT)
        where: list[ColumnElement[bool]] = [*(period.conditions() if period else [])]
        if undecided_only:
            where.append(ExpectedCall.outcome.in_((PENDING, MISSING)))
        keys = self._keys(where, ids)
        counts: Tally[str] = Tally()
        changed = alerts = 0
        for start in range(0, len(keys), _CHUNK):
            chunk_counts, chunk_changed, raised = self._reconcile_chunk(
                principal, keys[start : start + _CHUNK]
            )
            counts.update(chunk_counts)
            changed += chunk_changed
            alerts += raised
        result = {o: counts.get(o, 0) for o in OUTCOMES}
        if keys:  # a run that looked at nothing (a batch sent again) leaves the last counts standing
            for outcome, count in result.items():
                LAST_OUTCOMES.labels(outcome=outcome).set(count)
        LAST_RUN.set(self._clock().timestamp())
        if changed or alerts:
            log.info("assurance reconciliation: %d calls, %d changed, %d alerts", len(keys), changed, alerts)
        return {"reconciled": len(keys), "changed": changed, "alerts": alerts, "outcomes": result}

    def _keys(self, where: list[ColumnElement[bool]], ids: Sequence[int] | None) -> list[int]:
        """The records to reconcile, in start order (so each chunk spans a short time)."""
        query = select(ExpectedCall.started_at, ExpectedCall.id).where(*where)
        found: list[tuple[datetime, int]] = []
        with self._catalog.read() as session:
            if ids is None:
                found = [(at, key) for at, key in session.execute(query)]
            wanted = list(ids or ())
            for start in range(0, len(wanted), _CHUNK):  # bounded IN lists (SQLite's variable limit)
                chunk = wanted[start : start + _CHUNK]
                found.extend(
                    (at, key) for at, key in session.execute(query.where(ExpectedCall.id.in_(chunk)))
                )
        return [key for _, key in sorted(found, key=lambda pair: (_aware(pair[0]), pair[1]))]

    def _reconcile_chunk(self, principal: Principal, keys: list[int]) -> tuple[Tally[str], int, int]:
        now = self._clock()
        raised: list[dict[str, Any]] = []
        counts: Tally[str] = Tally()
        changed = 0
        with self._catalog.write() as session:
            rows = list(session.scalars(select(ExpectedCall).where(ExpectedCall.id.in_(keys))))
            matches = self._match(session, rows)
            statuses, agents = self._recording_facts(session, [m.recording_id for m in matches.values()])
            for row in rows:
                match = matches.get(row.id)
                outcome = self._decide(row, match, statuses, now)
                if match is not None and row.agent_user_id is None:
                    row.agent_user_id, row.team_id = agents.get(match.recording_id, (None, None))
                new = (outcome, match.recording_id if match else None, match.matched_by if match else None)
                if new != (row.outcome, row.recording_id, row.matched_by):
                    changed += 1
                row.outcome, row.recording_id, row.matched_by = new
                row.ambiguous = bool(match and match.ambiguous)
                row.reconciled_at = now
                counts[outcome] += 1
            must = self._must_record(session, {r.agent_user_id for r in rows if r.agent_user_id is not None})
            for row in rows:
                row.must_record = row.agent_user_id in must
                view = self._alert_if_due(session, principal, row, must, now)
                if view is not None:
                    raised.append(view)
            if changed or raised:
                detail = f"reconciled={len(rows)} changed={changed} alerts={len(raised)}"
                self._log.record_in(session, principal, "assurance_reconcile", detail=detail)
        for view in raised:
            ALERTS_RAISED.labels(kind=view["kind"]).inc()
            log.warning("alert %s (%s): %s", view["id"], view["kind"], view["detail"])
        return counts, changed, len(raised)

    def _decide(self, row: ExpectedCall, match: Match | None, statuses: dict[str, str], now: datetime) -> str:
        if match is not None:
            return outcome_of(statuses.get(match.recording_id))
        ended = _aware(row.ended_at or row.started_at)
        return PENDING if now - ended < self._grace else MISSING

    def _match(self, session: Session, rows: list[ExpectedCall]) -> dict[int, Match]:
        if not rows:
            return {}
        expected = [
            Expected(
                row.id,
                _aware(row.started_at),
                frozenset(v for v in (row.pbx_call_id, row.sip_call_id, row.vendor_call_id) if v),
                frozenset(h for h in (row.calling_hash, row.called_hash) if h),
                row.agent_user_id,
            )
            for row in rows
        ]
        earliest = min(e.started_at for e in expected) - self._tolerance
        latest = max(e.started_at for e in expected) + self._tolerance
        all_ids = sorted({i for e in expected for i in e.ids})
        by_id = select(CallIdentifier.call_id).where(CallIdentifier.value.in_(all_ids))
        recordings = session.execute(
            select(Recording, Call.calling_number, Call.called_number)
            .join(Call, Call.id == Recording.call_id)
            .where(
                or_(
                    Recording.started_at.between(earliest, latest),
                    Recording.call_id.in_(by_id),
                )
            )
        ).all()
        call_ids = {r.call_id for r, _, _ in recordings}
        identifiers: dict[str, dict[str, str]] = {}
        for call_id, kind, value in session.execute(
            select(CallIdentifier.call_id, CallIdentifier.kind, CallIdentifier.value).where(
                CallIdentifier.call_id.in_(call_ids)
            )
        ):
            identifiers.setdefault(call_id, {})[value] = kind
        known: dict[str, str | None] = {}
        candidates = [
            Candidate(
                r.id,
                _aware(r.started_at),
                r.status,
                identifiers.get(r.call_id, {}),
                self._hashes(known, calling, called, r.customer_number),
                r.agent_user_id,
            )
            for r, calling, called in recordings
        ]
        offered = [c.recording_id for c in candidates]
        claimed = frozenset(
            rid
            for rid in session.scalars(
                select(ExpectedCall.recording_id).where(
                    ExpectedCall.recording_id.in_(offered), ExpectedCall.id.not_in([r.id for r in rows])
                )
            )
            if rid is not None
        )
        return match_calls(expected, candidates, self._tolerance, claimed)

    def _hashes(self, known: dict[str, str | None], *numbers: str | None) -> frozenset[str]:
        """A recording's numbers as call records keep them (keyed hashes), to compare;
        ``known`` holds those hashed already (a line's own numbers recur on every call)."""
        found: set[str] = set()
        for number in numbers:
            if number and number not in known:
                known[number] = number_hash(self._hasher, number, self._region)
            if number and known[number]:
                found.add(str(known[number]))
        return frozenset(found)

    @staticmethod
    def _recording_facts(
        session: Session, recording_ids: list[str]
    ) -> tuple[dict[str, str], dict[str, tuple[int | None, int | None]]]:
        statuses: dict[str, str] = {}
        agents: dict[str, tuple[int | None, int | None]] = {}
        for rid, status, agent, team in session.execute(
            select(Recording.id, Recording.status, Recording.agent_user_id, Recording.team_id).where(
                Recording.id.in_(recording_ids)
            )
        ):
            statuses[rid] = status
            agents[rid] = (agent, team)
        return statuses, agents

    @staticmethod
    def _must_record(session: Session, user_ids: set[int]) -> dict[int, str]:
        """Must-record users among ``user_ids``: id -> username."""
        if not user_ids:
            return {}
        rows = session.execute(
            select(User.id, User.username).where(User.id.in_(user_ids), User.must_record.is_(True))
        )
        return {int(uid): str(name) for uid, name in rows}

    def _alert_if_due(
        self, session: Session, principal: Principal, row: ExpectedCall, must: dict[int, str], now: datetime
    ) -> dict[str, Any] | None:
        kind = _ALERT_KIND.get(row.outcome)
        if kind is None or row.alerted or row.agent_user_id not in must:
            return None
        username = must[row.agent_user_id]
        what = row.outcome.replace("_", " ")
        detail = (
            f"must-record call {row.pbx_call_id} of {username} started {iso(_aware(row.started_at))}: {what}"
            + (f" (recording {row.recording_id})" if row.recording_id else "")
        )
        alert = NewAlert(
            kind, detail, username=username, user_id=row.agent_user_id, recording_id=row.recording_id
        )
        row.alerted = True
        return self._alerts.raise_in(session, alert, principal, None, now)
