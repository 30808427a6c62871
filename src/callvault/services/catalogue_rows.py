"""The catalogue rows of a recording, as plain column values.

A recording's rows are written twice in its life: the call, its identifiers,
its participants and the recording's search columns when it starts, and its
streams and events when it is sealed. Both happen for every call, so the
recording service writes them as plain inserts (no ORM objects, no unit of
work to compute) from the values built here; a metadata update applies the
same values to the loaded rows. Directory lookups happen here, before the
caller opens its write transaction, so they never hold the catalogue's write lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from callvault.services.call_record import CallEvent, CallRecord, StreamRecord
from callvault.services.directory import AgentDirectory
from callvault.services.jurisdiction import jurisdiction_of
from callvault.services.phone import normalise_number

Row = dict[str, Any]
# A call's consent requirement from its parties' jurisdictions (see .jurisdiction_table).
ConsentRequirement = Callable[[list[str | None]], str | None]


@dataclass(frozen=True)
class CallRows:
    """What a call record says, as columns: ``calls``, its children, and the recording's copies."""

    call: Row  # calls columns (not id, started_at, source: set once, at the start)
    identifiers: list[Row]  # call_identifiers, without call_id
    participants: list[Row]  # participants, without call_id
    recording: Row  # the search columns copied onto recordings


def call_rows(
    call: CallRecord, directory: AgentDirectory, region: str, consent: ConsentRequirement | None = None
) -> CallRows:
    """The rows of ``call``, each participant's agent resolved through ``directory``, each
    party placed in its jurisdiction and (with ``consent``) the call's consent requirement."""
    identifiers = [("sip_call_id", c) for c in call.sip_call_ids if c]
    identifiers += [(kind, value) for kind, value in sorted(call.external_ids.items()) if value]
    agent_user_id: int | None = None
    customer_number: str | None = None
    participants: list[Row] = []
    for p in call.participants:
        user_id = p.user_id
        if user_id is None and not p.resolved and p.aor:
            user_id = directory.agent_for(p.aor)
        number = normalise_number(p.aor, region) if p.aor else None
        role = p.role
        if user_id is not None and role == "other":
            role = "agent"
        if role == "agent" and agent_user_id is None:
            agent_user_id = user_id
        if role == "customer" and customer_number is None:
            customer_number = number
        participants.append(
            {
                "aor": p.aor,
                "display_name": p.display_name,
                "number": number,
                "role": role,
                "user_id": user_id,
                "joined_at": p.joined_at,
                "left_at": p.left_at,
                "jurisdiction": jurisdiction_of(number),
            }
        )
    if customer_number is None:
        raw = call.calling_number if call.direction != "outbound" else call.called_number
        customer_number = normalise_number(raw, region)
    consent_columns: Row = {}
    if consent is not None:
        places = [p["jurisdiction"] for p in participants] or [
            jurisdiction_of(normalise_number(n, region)) for n in (call.calling_number, call.called_number)
        ]
        consent_columns["consent_requirement"] = consent(places)
    return CallRows(
        call={
            "direction": call.direction,
            "calling_number": normalise_number(call.calling_number, region) or call.calling_number,
            "called_number": normalise_number(call.called_number, region) or call.called_number,
            "queue": call.queue,
            "vendor_metadata": call.vendor_metadata,
        },
        identifiers=[{"kind": k[:40], "value": v[:255]} for k, v in dict.fromkeys(identifiers)],
        participants=participants,
        recording={
            "direction": call.direction,
            "queue": call.queue,
            "customer_number": customer_number,
            "agent_user_id": agent_user_id,
            "team_id": directory.team_of(agent_user_id),
            **consent_columns,
        },
    )


def stream_rows(recording_id: str, streams: list[StreamRecord]) -> list[Row]:
    """The ``streams`` rows of a recording being sealed."""
    return [
        {
            "recording_id": recording_id,
            "label": s.label[:64],
            "codec": s.codec,
            "channel": int(s.channel),
            "participant_aor": s.participant_aor,
            "stats": as_stored(dict(s.stats)),
        }
        for s in streams
    ]


def event_rows(recording_id: str, events: list[CallEvent]) -> list[Row]:
    """The ``recording_events`` rows of a recording being sealed."""
    return [
        {
            "recording_id": recording_id,
            "kind": e.kind[:32],
            "offset_seconds": round(e.offset_seconds, 3),
            "data": as_stored(dict(e.data)),
        }
        for e in events
    ]


def as_stored(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as a JSON column gives it back (tuples as lists, keys as strings), so a
    manifest signed from the values written is the one rebuilt from the rows at verification."""
    stored: dict[str, Any] = json.loads(json.dumps(value))
    return stored


def _stat(stats: dict[str, object], name: str) -> int:
    value = stats.get("packets_" + name, stats.get(name, 0))
    return int(value) if isinstance(value, (int, float)) else 0


def completeness(streams: list[StreamRecord]) -> dict[str, object]:
    """The recording's ``completeness`` column: packets expected and lost over its streams."""
    expected = sum(_stat(s.stats, "expected") for s in streams)
    lost = sum(_stat(s.stats, "lost") for s in streams)
    result: dict[str, object] = {
        "packets_expected": expected,
        "packets_lost": lost,
        "loss_fraction": round(lost / expected, 6) if expected else 0.0,
    }
    spool_lost = sum(_stat(s.stats, "spool_lost") for s in streams)
    if spool_lost:
        # Received by the recorder but never stored (full disk): the call time missing, at most.
        seconds = [s.stats.get("spool_lost_seconds", 0.0) for s in streams]
        result["spool_lost_packets"] = spool_lost
        result["spool_lost_seconds"] = max(float(x) for x in seconds if isinstance(x, int | float))
    # Imports: packets the decoder rejected are loss too (every stream carries the file's count).
    decode_errors = [s.stats["decode_errors"] for s in streams if "decode_errors" in s.stats]
    if decode_errors:
        result["decode_errors"] = max(int(str(e)) for e in decode_errors)
    return result
