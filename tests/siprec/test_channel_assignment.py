"""The documented rule chain that puts the agent left and the customer right."""

from __future__ import annotations

from datetime import UTC, datetime

from callvault.services.call_record import AGENT_CHANNEL, CUSTOMER_CHANNEL, MIXED_CHANNEL
from callvault.services.channel_assignment import PartyInfo, assign_channels
from callvault.services.siprec_session import SiprecSession
from callvault.sip.metadata import ParticipantMeta, RecordingMetadata, StreamMeta

AGENTS = {"1001@pbx.example": 7}


def agent_for(aor: str | None) -> int | None:
    return AGENTS.get(aor or "")


def nobody(aor: str | None) -> int | None:
    return None


CUSTOMER = PartyInfo("c", "+14155550100@sbc")
AGENT = PartyInfo("a", "1001@pbx.example")


def test_directory_beats_label_order() -> None:
    plan = assign_channels(["1", "2"], {"1": "c", "2": "a"}, [CUSTOMER, AGENT], agent_for=agent_for)
    assert plan.rule == "agent_directory"
    assert plan.channels == {"1": CUSTOMER_CHANNEL, "2": AGENT_CHANNEL}
    assert plan.agent_user_ids == {"a": 7} and plan.role_of("c") == "customer"


def test_vendor_role_then_direction_then_label_order() -> None:
    hinted = [PartyInfo("c", "x@y", "customer"), PartyInfo("a", "z@y")]
    plan = assign_channels(["1", "2"], {"1": "c", "2": "a"}, hinted, agent_for=nobody)
    assert plan.rule == "vendor_role" and plan.channels["2"] == AGENT_CHANNEL
    calling = [PartyInfo("c", "x@y", "calling"), PartyInfo("a", "z@y", "called")]
    inbound = assign_channels(
        ["1", "2"], {"1": "c", "2": "a"}, calling, agent_for=nobody, direction="inbound"
    )
    assert inbound.rule == "direction" and inbound.channels == {"1": CUSTOMER_CHANNEL, "2": AGENT_CHANNEL}
    outbound = assign_channels(
        ["1", "2"], {"1": "c", "2": "a"}, calling, agent_for=nobody, direction="outbound"
    )
    assert outbound.channels == {"1": AGENT_CHANNEL, "2": CUSTOMER_CHANNEL}
    unknown = assign_channels(["1", "2"], {"1": "c", "2": "a"}, calling, agent_for=nobody)
    assert unknown.rule == "label_order" and unknown.channels == {"1": AGENT_CHANNEL, "2": CUSTOMER_CHANNEL}


def test_no_stream_mapping_falls_back_to_label_order() -> None:
    plan = assign_channels(["1", "2"], {"1": None, "2": None}, [CUSTOMER, AGENT], agent_for=agent_for)
    assert plan.channels == {"1": AGENT_CHANNEL, "2": CUSTOMER_CHANNEL}


def test_single_stream_is_mixed_and_conference_puts_agents_left() -> None:
    mixed = assign_channels(["1"], {"1": None}, [CUSTOMER, AGENT], agent_for=agent_for)
    assert mixed.mixed and mixed.channels == {"1": MIXED_CHANNEL} and mixed.agent_side == {"a"}
    third = PartyInfo("t", "+442071234567@sbc")
    plan = assign_channels(
        ["1", "2", "3"], {"1": "c", "2": "a", "3": "t"}, [CUSTOMER, AGENT, third], agent_for=agent_for
    )
    assert plan.channels == {"1": CUSTOMER_CHANNEL, "2": AGENT_CHANNEL, "3": CUSTOMER_CHANNEL}


def _metadata(participants: list[tuple[str, str, list[str]]]) -> RecordingMetadata:
    return RecordingMetadata(
        data_mode="complete",
        participants=[
            ParticipantMeta(pid, aor=aor, send_stream_ids=sends) for pid, aor, sends in participants
        ],
        streams=[StreamMeta("s1", label="1"), StreamMeta("s2", label="2")],
    )


def test_session_tracks_joins_and_leaves_from_snapshots() -> None:
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    session = SiprecSession("call-1", start, agent_for=agent_for)
    assert (
        session.apply_metadata(
            _metadata([("c", "+14155550100@sbc", ["s1"]), ("a", "1001@pbx.example", ["s2"])]), start
        )
        == []
    )
    bindings = session.bind_streams(["1", "2"])
    assert [(b.label, b.channel, b.participant_aor) for b in bindings] == [
        ("1", CUSTOMER_CHANNEL, "+14155550100@sbc"),
        ("2", AGENT_CHANNEL, "1001@pbx.example"),
    ]
    assert session.call.calling_number == "+14155550100"
    later = start.replace(second=30)
    events = session.apply_metadata(
        _metadata(
            [
                ("c", "+14155550100@sbc", ["s1"]),
                ("a", "1001@pbx.example", ["s2"]),
                ("t", "2000@pbx.example", []),
            ]
        ),
        later,
    )
    assert [(e.kind, e.offset_seconds, e.data["aor"]) for e in events] == [
        ("participant_joined", 30.0, "2000@pbx.example")
    ]
    assert len(session.call.participants) == 3
    events = session.apply_metadata(
        _metadata([("c", "+14155550100@sbc", ["s1"]), ("a", "1001@pbx.example", ["s2"])]), later
    )
    assert [e.kind for e in events] == ["participant_left"]
    left = [p for p in session.call.participants if p.aor == "2000@pbx.example"]
    assert left and left[0].left_at == later
    roles = {p.aor: p.role for p in session.call.participants}
    assert roles["1001@pbx.example"] == "agent" and roles["+14155550100@sbc"] == "customer"
