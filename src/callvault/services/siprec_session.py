"""The domain side of one SIPREC recording session (RFC 7866), free of sockets and SIP framing.

It turns the SRC's metadata snapshots into the :class:`CallRecord` the vault
catalogues, decides the stereo layout (:mod:`callvault.services.channel_assignment`)
and reports participants joining and leaving as call events. Most SRCs send a
complete snapshot on every change, so joins and leaves come from diffing
snapshots, not from ``disassociate-time``.

Without usable metadata (a plain call, or metadata the parser refused) the
call is still recorded: participants then come from the communication
session's From/To, when the caller supplies them, and channels from stream
label order.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from callvault.services.call_record import (
    MIXED_CHANNEL,
    CallEvent,
    CallRecord,
    ParticipantRecord,
    ParticipantRole,
)
from callvault.services.channel_assignment import ChannelPlan, PartyInfo, assign_channels, classify_hint
from callvault.sip.metadata import RecordingMetadata, apply_update, diff_participants

Direction = Literal["inbound", "outbound"]
_DIRECTION_IN_XML = re.compile(
    r"<(?:[\w.-]+:)?(?:call-?)?direction[^>]*>\s*(inbound|outbound|incoming|outgoing|in|out)\s*<",
    re.IGNORECASE,
)


def parse_direction(value: str | None) -> Direction | None:
    if not value:
        return None
    lowered = value.strip().lower()
    if lowered in ("inbound", "incoming", "in", "terminating"):
        return "inbound"
    if lowered in ("outbound", "outgoing", "out", "originating"):
        return "outbound"
    return None


def direction_from_metadata(metadata: RecordingMetadata | None) -> Direction | None:
    """A vendor extension such as ``<direction>inbound</direction>``, if any."""
    if metadata is None:
        return None
    blobs: list[str] = list(metadata.extensions)
    for session in metadata.sessions:
        blobs.extend(session.extensions)
    for blob in blobs:
        match = _DIRECTION_IN_XML.search(blob)
        if match:
            return parse_direction(match.group(1))
    return None


@dataclass(frozen=True)
class StreamBinding:
    """One recorded stream as the media engine needs it."""

    label: str
    channel: int
    participant_aor: str | None


class SiprecSession:
    def __init__(
        self,
        call_id: str,
        started_at: datetime,
        *,
        agent_for: Callable[[str | None], int | None],
        direction: Direction | None = None,
        source: str = "siprec",
        max_participants: int = 32,
        fallback_parties: Sequence[tuple[str | None, str | None]] = (),
    ) -> None:
        """``fallback_parties``: (aor, display name) of caller then callee, used without metadata."""
        self.call_id = call_id
        self.started_at = started_at
        self._agent_for = agent_for
        self._header_direction = direction
        self._max_participants = max_participants
        self.metadata: RecordingMetadata | None = None
        self.metadata_errors: list[str] = []
        self.plan: ChannelPlan | None = None
        self._labels: list[str] = []
        self._records: dict[str, ParticipantRecord] = {}
        self._fallback = [
            PartyInfo(f"party-{i}", aor, "caller" if i == 0 else "callee")
            for i, (aor, _) in enumerate(fallback_parties)
        ]
        for party, (aor, name) in zip(self._fallback, fallback_parties, strict=True):
            self._records[party.participant_id] = ParticipantRecord(
                aor=aor, display_name=name, joined_at=started_at
            )
        self.call = CallRecord(
            started_at=started_at, source=source, direction=direction, sip_call_ids=[call_id]
        )

    @property
    def direction(self) -> Direction | None:
        return self._header_direction or direction_from_metadata(self.metadata)

    def apply_metadata(self, update: RecordingMetadata, at: datetime) -> list[CallEvent]:
        """Merge a snapshot or partial update; returns join/leave events (none for the first)."""
        previous = self.metadata
        merged = apply_update(previous, update)
        if len(merged.participants) > self._max_participants:
            raise ValueError(
                f"metadata lists {len(merged.participants)} participants, above the limit of {self._max_participants}"
            )
        self.metadata = merged
        events: list[CallEvent] = []
        offset = max(0.0, (at - self.started_at).total_seconds())
        if previous is None:
            self._records = {}
            for meta in merged.active_participants:
                self._records[meta.participant_id] = ParticipantRecord(
                    aor=meta.aor, display_name=_clean_name(meta.display_name), joined_at=self.started_at
                )
        else:
            changes = diff_participants(previous, merged)
            for meta in changes.joined:
                self._records[meta.participant_id] = ParticipantRecord(
                    aor=meta.aor, display_name=_clean_name(meta.display_name), joined_at=at
                )
                events.append(CallEvent("participant_joined", offset, {"aor": meta.aor or ""}))
            for meta in changes.left:
                record = self._records.get(meta.participant_id)
                if record is not None and record.left_at is None:
                    record.left_at = at
                events.append(CallEvent("participant_left", offset, {"aor": meta.aor or ""}))
        for meta in merged.participants:
            record = self._records.get(meta.participant_id)
            if record is not None:
                record.aor = meta.aor or record.aor
                record.display_name = _clean_name(meta.display_name) or record.display_name
        if self._labels:
            self.plan = self._decide(self._labels)
        self._refresh_call()
        return events

    def bind_streams(self, labels: Sequence[str]) -> list[StreamBinding]:
        """Channels for the recorded streams (labels in SDP order); re-run on each offer."""
        self._labels = list(labels)
        self.plan = self._decide(self._labels)
        self._refresh_call()
        plan = self.plan
        return [
            StreamBinding(label, plan.channels[label], self._aor_sending(label)) for label in self._labels
        ]

    @property
    def mixed(self) -> bool:
        return self.plan is not None and self.plan.mixed

    def _parties(self) -> list[PartyInfo]:
        if self.metadata is None:
            return self._fallback
        return [
            PartyInfo(p.participant_id, p.aor, p.role_hint)
            for p in self.metadata.participants
            if p.active or self.metadata.data_mode == "partial"
        ]

    def _senders(self) -> dict[str, str | None]:
        senders: dict[str, str | None] = {}
        for label in self._labels:
            sender: str | None = None
            if self.metadata is not None:
                stream = self.metadata.stream_for_label(label)
                if stream is not None:
                    participant = self.metadata.participant_sending(stream.stream_id)
                    sender = participant.participant_id if participant is not None else None
            senders[label] = sender
        return senders

    def _aor_sending(self, label: str) -> str | None:
        sender = self._senders().get(label)
        if sender is None:
            return None
        if self.metadata is not None:
            participant = self.metadata.participant(sender)
            return participant.aor if participant is not None else None
        return None

    def _decide(self, labels: list[str]) -> ChannelPlan:
        return assign_channels(
            labels, self._senders(), self._parties(), agent_for=self._agent_for, direction=self.direction
        )

    def _refresh_call(self) -> None:
        parties = self._parties()
        plan = self.plan
        for party in parties:
            record = self._records.get(party.participant_id)
            if record is None:
                continue
            role: ParticipantRole = "other"
            if plan is not None and (plan.agent_side or not plan.mixed):
                role = plan.role_of(party.participant_id)
            record.role = role
            if plan is not None:
                # The directory was asked once for this plan; the catalogue takes its answer as is.
                record.user_id = plan.agent_user_ids.get(party.participant_id)
                record.resolved = True
        self.call.participants = list(self._records.values())
        self.call.direction = self.direction
        caller, callee = self._caller_callee(parties)
        self.call.calling_number = _number_of(caller)
        self.call.called_number = _number_of(callee)
        if self.metadata is not None:
            self.call.external_ids = dict(self.metadata.external_ids)
            blobs = list(self.metadata.extensions)
            self.call.vendor_metadata = "\n".join(blobs) if blobs else None
            for session in self.metadata.sessions:
                for call_id in session.sip_call_ids:
                    if call_id not in self.call.sip_call_ids:
                        self.call.sip_call_ids.append(call_id)
        if plan is not None and plan.mixed and "mixed" not in self.call.tags:
            self.call.tags.append("mixed")

    def _caller_callee(self, parties: Sequence[PartyInfo]) -> tuple[PartyInfo | None, PartyInfo | None]:
        caller = next((p for p in parties if classify_hint(p.role_hint) == "caller"), None)
        callee = next((p for p in parties if classify_hint(p.role_hint) == "callee"), None)
        if caller is None and callee is None and len(parties) >= 2:
            # SRCs list the communication session's caller first almost always.
            caller, callee = parties[0], parties[1]
        return caller, callee

    def channel_of(self, label: str) -> int:
        if self.plan is None:
            return MIXED_CHANNEL
        return self.plan.channels.get(label, MIXED_CHANNEL)


def _clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    stripped = name.strip()
    return stripped or None


def _number_of(party: PartyInfo | None) -> str | None:
    if party is None or not party.aor:
        return None
    return party.aor.rpartition("@")[0] or party.aor
