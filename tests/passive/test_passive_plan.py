"""Agent left, customer right for sniffed calls: directory, then PBX-side networks, then number shape."""

from __future__ import annotations

import ipaddress

from callvault.services.call_record import AGENT_CHANNEL, CUSTOMER_CHANNEL
from callvault.services.passive_call import direction_by_numbers, plan_call
from callvault.sip.passive_dialogs import Party, PartyMedia, PassiveCall

PBX = (ipaddress.ip_network("10.20.0.0/16"),)


def _call(
    caller: str, callee: str, caller_ip: str = "203.0.113.7", callee_ip: str = "10.20.0.15"
) -> PassiveCall:
    return PassiveCall(
        "c@test",
        "t1",
        1_760_000_000.0,
        Party(f"sip:{caller}@{caller_ip}", None, (caller_ip, 5060), PartyMedia((caller_ip, 40000))),
        Party(f"sip:{callee}@{callee_ip}", None, (callee_ip, 5060), PartyMedia((callee_ip, 16000))),
        answered_at=1_760_000_001.0,
    )


def nobody(_: str | None) -> int | None:
    return None


def test_the_agent_directory_decides_first() -> None:
    # The caller is a known agent although the callee sits in the PBX network.
    plan = plan_call(
        _call("2002", "1001"), agent_for=lambda aor: 7 if aor and "2002" in aor else None, agent_networks=PBX
    )
    assert plan.rule == "agent_directory"
    assert plan.channels == {"caller": AGENT_CHANNEL, "callee": CUSTOMER_CHANNEL}
    assert plan.call.direction == "outbound"
    assert [p.user_id for p in plan.call.participants] == [7, None]


def test_pbx_networks_decide_when_the_directory_knows_nobody() -> None:
    plan = plan_call(_call("+14155550100", "+442071838750"), agent_for=nobody, agent_networks=PBX)
    assert plan.channels == {"caller": CUSTOMER_CHANNEL, "callee": AGENT_CHANNEL}
    assert plan.call.direction == "inbound"
    assert [p.role for p in plan.call.participants] == ["customer", "agent"]
    # Both parties inside the PBX network: the networks do not split them.
    inside = plan_call(_call("1001", "1002", "10.20.0.9"), agent_for=nobody, agent_networks=PBX)
    assert inside.rule == "label_order"


def test_number_shape_gives_the_direction_last() -> None:
    assert direction_by_numbers("1001", "+14155550100") == "outbound"
    assert direction_by_numbers("+14155550100", "1001") == "inbound"
    assert direction_by_numbers("1001", "1002") is None
    outbound = plan_call(_call("1001", "+14155550100", "10.20.0.9", "203.0.113.7"), agent_for=nobody)
    assert outbound.rule == "direction" and outbound.channels["caller"] == AGENT_CHANNEL
    assert outbound.call.calling_number == "1001" and outbound.call.called_number == "+14155550100"
    assert outbound.call.source == "pcap" and outbound.call.sip_call_ids == ["c@test"]
