"""Call records as JSON and CSV: every malformed input is refused whole, naming where."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callvault.errors import InvalidInput
from callvault.services.call_record_input import MAX_BATCH, parse_batch, parse_csv

HEADER = "pbx_call_id,started_at,duration_seconds,direction,calling_number,called_number,agent,sip_call_id\n"
GOOD = "c-1,2026-01-31T09:00:00Z,65,inbound,+14155550199,+14155550100,alice,abc@sbc\n"


def _error(data: bytes) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_csv(data)
    return caught.value.message


def test_a_good_file_parses_with_times_in_utc() -> None:
    (record,) = parse_csv((HEADER + GOOD).encode())
    assert record.pbx_call_id == "c-1" and record.sip_call_id == "abc@sbc"
    assert record.started_at == datetime(2026, 1, 31, 9, 0, tzinfo=UTC)
    assert record.ended_at == datetime(2026, 1, 31, 9, 1, 5, tzinfo=UTC)
    assert record.direction == "inbound" and record.agent == "alice"


def test_bom_crlf_empty_cells_and_blank_lines_are_fine() -> None:
    data = ("\ufeff" + HEADER + GOOD + "\n" + "c-2,2026-01-31T10:00:00+01:00,,,,,,\n").replace("\n", "\r\n")
    records = parse_csv(data.encode())
    assert [r.pbx_call_id for r in records] == ["c-1", "c-2"]
    assert records[1].started_at == datetime(2026, 1, 31, 9, 0, tzinfo=UTC) and records[1].ended_at is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (GOOD + "c-2,yesterday,,,,,,\n", "line 3: started_at: is not an ISO 8601 time"),
        (GOOD + "c-2,2026-01-31T09:00:00,,,,,,\n", "line 3: started_at: needs a time zone"),
        (GOOD + ",2026-01-31T09:00:00Z,,,,,,\n", "line 3: pbx_call_id: required"),
        (GOOD + "c-2,2026-01-31T09:00:00Z,-5,,,,,\n", "line 3: duration_seconds: must be between 0"),
        (GOOD + "c-2,2026-01-31T09:00:00Z,ten,,,,,\n", "line 3: duration_seconds: must be a number"),
        (GOOD + "c-2,2026-01-31T09:00:00Z,,sideways,,,,\n", "line 3: direction: must be inbound or outbound"),
        (GOOD + "c-2,2026-01-31T09:00:00Z,,\n", "line 3: 4 fields, the header names 8"),
        (GOOD + 'c-2,"2026-01-31T09:00:00Z,,,,,,,\n', "line 3: not valid CSV"),
        (GOOD + "c-1,2026-01-31T09:05:00Z,,,,,,\n", "line 3: pbx_call_id repeats an earlier record"),
        (GOOD + "c-2,2026-01-31T09:00:00Z,,,,,bob\x07,\n", "line 3: agent: holds control characters"),
    ],
)
def test_a_malformed_line_is_named(body: str, message: str) -> None:
    assert _error((HEADER + body).encode()).startswith(message)


def test_header_problems_are_named() -> None:
    assert _error(b"").startswith("line 1: the file is empty")
    assert _error(b"pbx_call_id,started,agent\n").startswith("line 1: unknown columns: started")
    assert _error(b"pbx_call_id,agent\nc-1,alice\n").startswith(
        "line 1: missing required columns: started_at"
    )
    assert _error(b"pbx_call_id,started_at,agent,agent\n").startswith("line 1: columns named twice: agent")
    assert _error(HEADER.encode()) == "the file holds no call records (only a header line)"
    assert _error((HEADER + GOOD).encode() + b"c-2,\xff\xfe,,,,,,\n").startswith("line 3: not UTF-8 text")


def test_a_bad_number_is_refused_without_being_echoed() -> None:
    number = "+1415555" + "0" * 80
    message = _error((HEADER + f"c-1,2026-01-31T09:00:00Z,,,{number},,,\n").encode())
    assert message.startswith("line 2: calling_number: longer than 64 characters")
    assert "4155550" not in message


def test_a_repeated_identical_record_is_taken_once() -> None:
    assert len(parse_csv((HEADER + GOOD + GOOD).encode())) == 1


def test_json_batches_name_the_record() -> None:
    good = {"pbx_call_id": "c-1", "started_at": "2026-01-31T09:00:00Z"}
    assert parse_batch({"records": [good]})[0].pbx_call_id == "c-1"
    assert parse_batch([good])[0].pbx_call_id == "c-1"
    for body, message in (
        ({"records": "x"}, 'the body must be {"records": [...]}'),
        ({"records": [good], "extra": 1}, 'the body must be {"records": [...]}'),
        ({"records": []}, f"a batch holds 1 to {MAX_BATCH} records"),
        ({"records": [good, 5]}, "record 2: must be an object"),
        (
            {"records": [good, {**good, "pbx_call_id": "c-2", "started_at": 7}]},
            "record 2: started_at: must be",
        ),
        ({"records": [{**good, "colour": "red"}]}, "record 1: unknown fields: colour"),
        ({"records": [{**good, "duration_seconds": True}]}, "record 1: duration_seconds: must be a number"),
        (
            {"records": [{**good, "ended_at": "2026-01-31T08:00:00Z"}]},
            "record 1: ended_at: must be after started_at",
        ),
        (
            {"records": [{**good, "ended_at": "2026-01-31T09:10:00Z", "duration_seconds": 600}]},
            "record 1: give ended_at or duration_seconds, not both",
        ),
    ):
        with pytest.raises(InvalidInput) as caught:
            parse_batch(body)
        assert caught.value.message.startswith(message), (body, caught.value.message)
