"""Which recorded stream goes to which archive channel: agent left, customer right.

The decision is a documented chain of rules; the first rule that can split
the participants into an agent side and a customer side wins, and the
result records which rule decided (so a wrong stereo layout can be traced):

1. ``agent_directory`` – a participant whose AOR / extension / number belongs
   to a known agent (``AgentDirectory.agent_for``) is on the agent side.
2. ``vendor_role`` – the SRC's metadata says so (a role hint such as
   ``agent``/``customer``).
3. ``direction`` – for an inbound call the called party is the agent, for an
   outbound call the caller is (needs the direction and calling/called roles).
4. ``label_order`` – the participant sending on the first stream (in SDP
   order) is the agent side; without a participant–stream mapping the first
   stream goes left and the others right.

A single recorded stream carries everyone (``MIXED_CHANNEL``, recording
flagged mixed). With more than two participants the agent side is left and
everyone else right. A stream whose sender is unknown goes left if no other
stream already does, else right.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from callvault.services.call_record import AGENT_CHANNEL, CUSTOMER_CHANNEL, MIXED_CHANNEL

Rule = Literal["agent_directory", "vendor_role", "direction", "label_order", "mixed", "none"]

_AGENT_HINTS = frozenset({"agent", "internal", "employee", "user", "operator", "representative", "csr"})
_CUSTOMER_HINTS = frozenset({"customer", "external", "contact", "client", "consumer"})
_CALLER_HINTS = frozenset({"calling", "caller", "originator", "orig", "from", "a-party"})
_CALLEE_HINTS = frozenset({"called", "callee", "terminator", "term", "to", "b-party"})


@dataclass(frozen=True)
class PartyInfo:
    """What the rules need to know about one participant."""

    participant_id: str
    aor: str | None
    role_hint: str | None = None


@dataclass(frozen=True)
class ChannelPlan:
    channels: dict[str, int]  # stream label -> AGENT_CHANNEL / CUSTOMER_CHANNEL / MIXED_CHANNEL
    agent_side: frozenset[str]  # participant ids on the agent side
    agent_user_ids: dict[str, int]  # participant id -> directory user id, for known agents
    mixed: bool
    rule: Rule

    def role_of(self, participant_id: str) -> Literal["agent", "customer"]:
        return "agent" if participant_id in self.agent_side else "customer"


def classify_hint(hint: str | None) -> Literal["agent", "customer", "caller", "callee"] | None:
    if not hint:
        return None
    value = hint.strip().lower()
    if value in _AGENT_HINTS:
        return "agent"
    if value in _CUSTOMER_HINTS:
        return "customer"
    if value in _CALLER_HINTS:
        return "caller"
    if value in _CALLEE_HINTS:
        return "callee"
    return None


def _splits(side: set[str], everyone: Sequence[str]) -> bool:
    return bool(side) and len(side) < len(everyone)


def assign_channels(
    labels: Sequence[str],
    senders: dict[str, str | None],
    parties: Sequence[PartyInfo],
    *,
    agent_for: Callable[[str | None], int | None],
    direction: Literal["inbound", "outbound"] | None = None,
) -> ChannelPlan:
    """Decide the stereo layout.

    ``labels`` are the recorded streams in SDP order; ``senders`` maps a label
    to the participant id sending on it (None when the metadata does not say).
    """
    ids = [p.participant_id for p in parties]
    user_ids: dict[str, int] = {}
    for party in parties:
        user_id = agent_for(party.aor) if party.aor else None
        if user_id is not None:
            user_ids[party.participant_id] = user_id

    if len(labels) == 1:
        mixed_agents = frozenset(user_ids) or frozenset(
            p.participant_id for p in parties if classify_hint(p.role_hint) == "agent"
        )
        return ChannelPlan({labels[0]: MIXED_CHANNEL}, mixed_agents, user_ids, True, "mixed")

    side: set[str] = set()
    rule: Rule = "none"
    if _splits(set(user_ids), ids):
        side, rule = set(user_ids), "agent_directory"
    if rule == "none":
        hints = {p.participant_id: classify_hint(p.role_hint) for p in parties}
        agents = {pid for pid, h in hints.items() if h == "agent"}
        customers = {pid for pid, h in hints.items() if h == "customer"}
        if _splits(agents, ids):
            side, rule = agents, "vendor_role"
        elif customers and len(customers) < len(ids):
            side, rule = set(ids) - customers, "vendor_role"
        elif direction is not None:
            wanted = "callee" if direction == "inbound" else "caller"
            decided = {pid for pid, h in hints.items() if h == wanted}
            if _splits(decided, ids):
                side, rule = decided, "direction"
    if rule == "none":
        first_sender = senders.get(labels[0]) if labels else None
        if first_sender is not None:
            side = {first_sender}
        rule = "label_order"

    channels: dict[str, int] = {}
    unknown: list[str] = []
    for label in labels:
        sender = senders.get(label)
        if sender is None:
            unknown.append(label)
        else:
            channels[label] = AGENT_CHANNEL if sender in side else CUSTOMER_CHANNEL
    for label in unknown:
        channels[label] = AGENT_CHANNEL if AGENT_CHANNEL not in channels.values() else CUSTOMER_CHANNEL
    return ChannelPlan(channels, frozenset(side), user_ids, False, rule)
