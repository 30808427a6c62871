"""Matching expected calls (call records) to recordings: pure, no catalogue.

Two ways, in order:

1. **By call id.** Any id the record carries (the PBX call id, the SIP
   Call-ID, a vendor id such as a Cisco GUID or an Avaya UCID) equal to an
   identifier catalogued with a recording. Several recordings of one call (two
   SRCs, a re-INVITE after a transfer) share ids: the best of them is taken
   (complete before incomplete, ..., then the nearest start).
2. **By numbers and start time.** For records no id matched: a recording
   that started within ``tolerance`` of the record, shares a phone number with
   it, and whose agent (when both sides know one) is the record's. Each
   recording serves one record: pairs are taken nearest start first, so two
   calls between the same numbers a minute apart each get their own
   recording. A match where the record had another candidate, or the
   recording another record, is flagged ``ambiguous`` for the report.

Recordings already matched to other records (``claimed``) are not offered for
the second way.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

NUMBERS_AND_TIME = "numbers_time"
# Which recording of a call counts when several share its ids: the one that holds most.
_STATUS_RANK = {"complete": 0, "incomplete": 1, "interrupted": 2, "recording": 3}


@dataclass(frozen=True)
class Expected:
    key: int
    started_at: datetime
    ids: frozenset[str]
    numbers: frozenset[str]
    agent_user_id: int | None = None


@dataclass(frozen=True)
class Candidate:
    recording_id: str
    started_at: datetime
    status: str
    ids: Mapping[str, str] = field(default_factory=dict)  # identifier value -> kind
    numbers: frozenset[str] = frozenset()
    agent_user_id: int | None = None


@dataclass(frozen=True)
class Match:
    recording_id: str
    matched_by: str  # the identifier kind ("sip_call_id", "ucid", ...) or NUMBERS_AND_TIME
    ambiguous: bool = False


def match_calls(
    expected: Iterable[Expected],
    candidates: Iterable[Candidate],
    tolerance: timedelta,
    claimed: frozenset[str] = frozenset(),
) -> dict[int, Match]:
    """Record key -> its recording, for the records that have one."""
    records = list(expected)
    offered = list(candidates)
    matches = _by_id(records, offered)
    taken = {m.recording_id for m in matches.values()} | set(claimed)
    rest = [r for r in records if r.key not in matches]
    free = [c for c in offered if c.recording_id not in taken]
    matches.update(_by_numbers_and_time(rest, free, tolerance))
    return matches


def _by_id(records: list[Expected], offered: list[Candidate]) -> dict[int, Match]:
    by_value: dict[str, list[tuple[Candidate, str]]] = defaultdict(list)
    for candidate in offered:
        for value, kind in candidate.ids.items():
            by_value[value].append((candidate, kind))
    found: dict[int, Match] = {}
    for record in records:
        hits = [hit for value in sorted(record.ids) for hit in by_value.get(value, ())]
        if not hits:
            continue
        best, kind = min(
            hits,
            key=lambda hit: (
                _STATUS_RANK.get(hit[0].status, len(_STATUS_RANK)),
                abs((hit[0].started_at - record.started_at).total_seconds()),
                hit[0].recording_id,
            ),
        )
        found[record.key] = Match(best.recording_id, kind)
    return found


def _compatible(record: Expected, candidate: Candidate, tolerance: timedelta) -> bool:
    if abs(candidate.started_at - record.started_at) > tolerance:
        return False
    if not record.numbers & candidate.numbers:
        return False
    return (
        record.agent_user_id is None
        or candidate.agent_user_id is None
        or record.agent_user_id == candidate.agent_user_id
    )


def _by_numbers_and_time(
    records: list[Expected], offered: list[Candidate], tolerance: timedelta
) -> dict[int, Match]:
    # Only recordings started within the tolerance are looked at: bisect a list in start order.
    ordered = sorted(offered, key=lambda c: c.started_at)
    starts = [c.started_at for c in ordered]
    pairs = [
        (abs((c.started_at - r.started_at).total_seconds()), r.key, c.recording_id)
        for r in records
        for c in ordered[
            bisect_left(starts, r.started_at - tolerance) : bisect_right(starts, r.started_at + tolerance)
        ]
        if _compatible(r, c, tolerance)
    ]
    choices: dict[int, int] = defaultdict(int)  # record -> how many recordings fit it
    suitors: dict[str, int] = defaultdict(int)  # recording -> how many records it fits
    for _, key, recording_id in pairs:
        choices[key] += 1
        suitors[recording_id] += 1
    found: dict[int, Match] = {}
    used: set[str] = set()
    for _, key, recording_id in sorted(pairs):
        if key in found or recording_id in used:
            continue
        used.add(recording_id)
        ambiguous = choices[key] > 1 or suitors[recording_id] > 1
        found[key] = Match(recording_id, NUMBERS_AND_TIME, ambiguous)
    return found
