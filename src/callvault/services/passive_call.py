"""A sniffed call (port mirroring or packet capture) as the vault catalogues it: parties, direction, stereo.

Which side is the agent, first rule that decides wins:

1. the agent directory: a party whose SIP identity, extension or number
   belongs to an agent user (:class:`~callvault.services.directory.AgentDirectory`);
2. ``CALLVAULT_CAPTURE_AGENT_NETWORKS``: the party whose signalling or
   media address is in the PBX-side networks, when only one is;
3. direction: a short extension calling a full number is an outbound call
   (the caller is the agent), a full number calling an extension an inbound
   one (the callee is); without that, the caller goes left.

The decision itself is :func:`~callvault.services.channel_assignment.assign_channels`,
the same chain SIPREC calls use: the networks become role hints and the
number shapes the direction.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from callvault.services.call_record import CallRecord, ParticipantRecord, ParticipantRole
from callvault.services.channel_assignment import ChannelPlan, PartyInfo, assign_channels
from callvault.settings import Network
from callvault.sip.passive_dialogs import SIDES, PassiveCall, Side

Direction = Literal["inbound", "outbound"]
EXTENSION_DIGITS = 6  # longest internal extension; longer numbers are outside lines


@dataclass(frozen=True)
class PassivePlan:
    """The catalogue's view of a sniffed call and the archive channel of each sender's stream."""

    call: CallRecord
    channels: dict[Side, int]
    aors: dict[Side, str | None]
    rule: str


def number_of(aor: str | None) -> str | None:
    """The user part of a SIP URI (``sip:1001@pbx`` → ``1001``)."""
    if not aor:
        return None
    user = aor.split(":", 1)[-1].split("@", 1)[0].split(";", 1)[0]
    return user or None


def _is_extension(number: str | None) -> bool:
    digits = (number or "").lstrip("+")
    return digits.isdigit() and len(digits) <= EXTENSION_DIGITS


def direction_by_numbers(caller: str | None, callee: str | None) -> Direction | None:
    if _is_extension(caller) and not _is_extension(callee) and callee:
        return "outbound"
    if _is_extension(callee) and not _is_extension(caller) and caller:
        return "inbound"
    return None


def _in_networks(call: PassiveCall, side: Side, networks: Sequence[Network]) -> bool:
    party = call.party(side)
    hosts = [party.signalling[0]] + ([party.media.address[0]] if party.media.address else [])
    for host in hosts:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            continue
        if any(address in network for network in networks):
            return True
    return False


def plan_call(
    call: PassiveCall,
    *,
    agent_for: Callable[[str | None], int | None],
    agent_networks: Sequence[Network] = (),
    tags: Sequence[str] = (),
) -> PassivePlan:
    """Catalogue rows and stereo layout of a sniffed call (see the module's rules)."""
    ids = {"caller": "caller", "callee": "callee"}
    inside = {side: _in_networks(call, side, agent_networks) for side in SIDES}
    hints: dict[Side, str]
    direction: Direction | None
    if inside["caller"] != inside["callee"]:
        hints = {side: "agent" if inside[side] else "customer" for side in SIDES}
        direction = "outbound" if inside["caller"] else "inbound"
    else:
        hints = {"caller": "caller", "callee": "callee"}
        direction = direction_by_numbers(number_of(call.caller.aor), number_of(call.callee.aor))
    parties = [PartyInfo(ids[side], call.party(side).aor, hints[side]) for side in SIDES]
    plan: ChannelPlan = assign_channels(
        list(SIDES), {s: ids[s] for s in SIDES}, parties, agent_for=agent_for, direction=direction
    )
    if plan.rule == "agent_directory":
        direction = "outbound" if "caller" in plan.agent_side else "inbound"
    started = datetime.fromtimestamp(call.answered_at or call.invited_at, UTC)
    participants = []
    for side in SIDES:
        party = call.party(side)
        role: ParticipantRole = plan.role_of(side)
        participants.append(
            ParticipantRecord(
                aor=party.aor,
                display_name=(party.display_name or "").strip() or None,
                role=role,
                joined_at=started,
                user_id=plan.agent_user_ids.get(side),
                resolved=True,
            )
        )
    record = CallRecord(
        started_at=started,
        source="pcap",
        direction=direction,
        calling_number=number_of(call.caller.aor),
        called_number=number_of(call.callee.aor),
        sip_call_ids=[call.call_id],
        tags=list(tags),
        participants=participants,
    )
    channels: dict[Side, int] = {side: plan.channels[side] for side in SIDES}
    return PassivePlan(record, channels, {s: call.party(s).aor for s in SIDES}, plan.rule)
