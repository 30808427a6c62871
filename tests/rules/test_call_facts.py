"""Where the rules' facts come from on a SIPREC call: headers and metadata extensions, hostile ones too."""

from __future__ import annotations

from datetime import UTC, datetime

from callvault.services.call_record import CallRecord, ParticipantRecord
from callvault.services.recording_rules import Decision
from callvault.services.rule_outcome import (
    customer_of,
    from_extensions,
    parse_labels,
    rule_columns,
    session_key,
)


def test_labels_from_a_header_keep_only_valid_ones() -> None:
    assert parse_labels("mifid2, hr ,  ,hr") == ["hr", "mifid2"]
    assert parse_labels("a b, <script>, ok:1, " + "x" * 65) == ["ok:1"]
    assert parse_labels(",".join(f"l{i}" for i in range(100)))[:2] == ["l0", "l1"]
    assert len(parse_labels(",".join(f"l{i}" for i in range(100)))) == 32
    assert parse_labels(None) == [] and parse_labels("") == []


def test_queue_and_labels_from_metadata_extensions() -> None:
    blobs = [
        '<extensiondata xmlns:acme="urn:acme"><acme:queue>  hr </acme:queue><acme:label>mifid2</acme:label></extensiondata>',
        "<extensiondata><recording-label>desk</recording-label><label>bad label</label></extensiondata>",
    ]
    assert from_extensions(blobs) == ("hr", ["desk", "mifid2"])
    assert from_extensions(["<x>nothing here</x>"]) == (None, [])


def test_customer_and_session_key() -> None:
    call = CallRecord(
        started_at=datetime.now(UTC),
        source="siprec",
        direction="inbound",
        calling_number="sip:+14155550199@carrier.example",
        sip_call_ids=["dialog-1@src", "cs-9@pbx"],
        participants=[ParticipantRecord("sip:1001@pbx.example", role="agent")],
    )
    assert customer_of(call, "US") == "+14155550199"  # no customer participant: the caller
    call.participants.append(ParticipantRecord("sip:+442079460000@carrier.example", role="customer"))
    assert customer_of(call, "US") == "+442079460000"
    assert session_key(call) == "cs-9@pbx"  # the communication session, the same on a retry
    call.sip_call_ids = ["dialog-1@src"]
    assert session_key(call) == "dialog-1@src"


def test_rule_columns() -> None:
    assert rule_columns(Decision("record", True)) == {}
    assert rule_columns(Decision("record", True), ["x"]) == {"labels": ["x"]}
    unrecorded = Decision("do_not_record", False, 3, "HR", ("hr",))
    assert rule_columns(unrecorded, ["a"]) == {
        "rule_name": "HR",
        "rule_action": "do_not_record",
        "labels": ["a", "hr"],
        "status": "not_recorded",
    }
