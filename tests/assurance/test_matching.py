"""Matching call records to recordings (pure): call ids, numbers and start time, tolerance,
ambiguity; and the outcome each recording status gives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callvault.services.assurance import outcome_of
from callvault.services.assurance_match import NUMBERS_AND_TIME, Candidate, Expected, Match, match_calls

T0 = datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
CUSTOMER = "+14155550199"
TOLERANCE = timedelta(seconds=30)


def _record(
    key: int,
    at: float = 0.0,
    ids: tuple[str, ...] = (),
    numbers: tuple[str, ...] = (CUSTOMER,),
    agent: int | None = None,
) -> Expected:
    return Expected(key, T0 + timedelta(seconds=at), frozenset(ids), frozenset(numbers), agent)


def _recording(
    rid: str,
    at: float = 0.0,
    status: str = "complete",
    ids: dict[str, str] | None = None,
    numbers: tuple[str, ...] = (CUSTOMER,),
    agent: int | None = None,
) -> Candidate:
    return Candidate(rid, T0 + timedelta(seconds=at), status, ids or {}, frozenset(numbers), agent)


def test_a_call_id_match_wins_over_a_nearer_match_by_numbers() -> None:
    records = [_record(1, at=0, ids=("pbx-1", "abc@sbc"))]
    recordings = [
        _recording("by-numbers", at=0),
        _recording("by-id", at=25, ids={"abc@sbc": "sip_call_id"}, numbers=()),
    ]
    assert match_calls(records, recordings, TOLERANCE) == {1: Match("by-id", "sip_call_id")}


def test_a_vendor_id_matches_however_far_the_clocks_are_apart() -> None:
    records = [_record(1, at=0, ids=("00001002441638267012",), numbers=())]
    recordings = [_recording("r", at=3600, ids={"00001002441638267012": "ucid"}, numbers=())]
    assert match_calls(records, recordings, TOLERANCE) == {1: Match("r", "ucid")}


def test_of_several_recordings_of_one_call_the_most_whole_counts() -> None:
    ids = {"abc@sbc": "sip_call_id"}
    recordings = [
        _recording("broken", at=0, status="interrupted", ids=ids),
        _recording("whole", at=5, status="complete", ids=ids),
        _recording("partial", at=1, status="incomplete", ids=ids),
    ]
    assert match_calls([_record(1, ids=("abc@sbc",))], recordings, TOLERANCE)[1].recording_id == "whole"


@pytest.mark.parametrize(("offset", "matched"), [(29.9, True), (30.0, True), (30.1, False), (-30.1, False)])
def test_numbers_and_time_match_only_within_the_tolerance(offset: float, matched: bool) -> None:
    found = match_calls([_record(1, at=0)], [_recording("r", at=offset)], TOLERANCE)
    assert (found.get(1) == Match("r", NUMBERS_AND_TIME)) is matched


def test_other_numbers_or_another_agent_do_not_match() -> None:
    records = [_record(1, numbers=(CUSTOMER,), agent=7), _record(2, numbers=("+14155550177",), agent=7)]
    recordings = [_recording("other-agent", agent=8), _recording("other-number", numbers=("+14155550166",))]
    assert match_calls(records, recordings, TOLERANCE) == {}
    # An agent known on one side only does not stand in the way.
    assert match_calls([_record(1, agent=7)], [_recording("r", agent=None)], TOLERANCE) == {
        1: Match("r", NUMBERS_AND_TIME)
    }


def test_two_calls_between_the_same_numbers_each_get_the_nearest_recording_and_are_flagged() -> None:
    records = [_record(1, at=0), _record(2, at=20)]
    recordings = [_recording("second", at=19), _recording("first", at=2)]
    found = match_calls(records, recordings, TOLERANCE)
    assert found == {1: Match("first", NUMBERS_AND_TIME, True), 2: Match("second", NUMBERS_AND_TIME, True)}


def test_one_recording_serves_one_record_the_other_stays_unmatched() -> None:
    found = match_calls([_record(1, at=-10), _record(2, at=3)], [_recording("r", at=0)], TOLERANCE)
    assert found == {2: Match("r", NUMBERS_AND_TIME, True)}


def test_an_unambiguous_match_is_not_flagged() -> None:
    found = match_calls([_record(1, at=0)], [_recording("r", at=12), _recording("far", at=300)], TOLERANCE)
    assert found == {1: Match("r", NUMBERS_AND_TIME, False)}


def test_recordings_claimed_by_other_records_or_by_an_id_match_are_not_offered() -> None:
    recordings = [_recording("claimed", at=0), _recording("by-id", at=1, ids={"x": "cisco_guid"})]
    records = [_record(1, at=0), _record(2, at=0, ids=("x",))]
    found = match_calls(records, recordings, TOLERANCE, claimed=frozenset({"claimed"}))
    assert found == {2: Match("by-id", "cisco_guid")}


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (None, "missing"),
        ("complete", "recorded_complete"),
        ("incomplete", "incomplete"),
        ("interrupted", "interrupted"),
        ("not_recorded", "not_recorded_by_rule"),
        ("not_kept", "not_recorded_by_rule"),
        ("recording", "pending"),
        ("some_future_status", "incomplete"),
    ],
)
def test_each_recording_status_gives_its_outcome(status: str | None, outcome: str) -> None:
    assert outcome_of(status) == outcome
