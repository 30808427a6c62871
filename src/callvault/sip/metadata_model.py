"""The recording metadata model (RFC 7865) and how snapshots and updates combine.

A recording session records communication sessions; participants send and
receive streams; a stream is tied to an SDP media section by its label. Most
SRCs send a complete snapshot on every change and never a disassociate time,
so the recording server learns who joined and left by diffing snapshots;
``partial`` updates (RFC 7865 hold/resume, BroadWorks redirect) are merged onto
the metadata in force.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

__all__ = [
    "CommunicationSessionMeta",
    "DataMode",
    "ParticipantChanges",
    "ParticipantMeta",
    "RecordingMetadata",
    "StreamMeta",
    "apply_update",
    "diff_participants",
    "normalise_aor",
    "union",
]

DataMode = Literal["complete", "partial"]

_URI_IN_BRACKETS_RE = re.compile(r"<([^>]*)>")


@dataclass(frozen=True, slots=True)
class CommunicationSessionMeta:
    """A recorded communication session (the call leg the SRC records)."""

    session_id: str
    sip_call_ids: list[str] = field(default_factory=list)
    sip_session_ids: list[str] = field(default_factory=list)
    group_ref: str | None = None
    start_time: datetime | None = None
    stop_time: datetime | None = None
    extensions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ParticipantMeta:
    """A party to the communication session and the streams it sends and receives.

    ``aor`` is a display form (``user@host``, or the bare number) and ``aor_raw``
    what the SRC sent. ``has_stream_association`` tells whether this document
    said anything about the participant's streams, which is what a ``partial``
    update needs to know before it replaces the send/recv lists.
    """

    participant_id: str
    aor: str | None = None
    aor_raw: str | None = None
    display_name: str | None = None
    send_stream_ids: list[str] = field(default_factory=list)
    recv_stream_ids: list[str] = field(default_factory=list)
    associate_time: datetime | None = None
    disassociate_time: datetime | None = None
    role_hint: str | None = None
    session_ids: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    has_stream_association: bool = False

    @property
    def aor_user(self) -> str | None:
        """The user part of the AOR (usually a number or extension)."""
        if self.aor is None:
            return None
        return self.aor.rpartition("@")[0] or self.aor

    @property
    def active(self) -> bool:
        return self.disassociate_time is None


@dataclass(frozen=True, slots=True)
class StreamMeta:
    """A media stream, matched to an SDP media section by ``label``."""

    stream_id: str
    session_id: str | None = None
    label: str = ""
    associate_time: datetime | None = None
    disassociate_time: datetime | None = None
    extensions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RecordingMetadata:
    data_mode: DataMode
    sessions: list[CommunicationSessionMeta] = field(default_factory=list)
    participants: list[ParticipantMeta] = field(default_factory=list)
    streams: list[StreamMeta] = field(default_factory=list)
    group_ids: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    external_ids: dict[str, str] = field(default_factory=dict)

    @property
    def active_participants(self) -> list[ParticipantMeta]:
        return [p for p in self.participants if p.active]

    def participant(self, participant_id: str) -> ParticipantMeta | None:
        return next((p for p in self.participants if p.participant_id == participant_id), None)

    def stream(self, stream_id: str) -> StreamMeta | None:
        return next((s for s in self.streams if s.stream_id == stream_id), None)

    def stream_for_label(self, label: str) -> StreamMeta | None:
        """The stream whose label is ``label`` (numeric labels compare by value)."""
        wanted = label.strip()
        for stream in self.streams:
            if stream.label == wanted:
                return stream
        if wanted.isdigit():
            for stream in self.streams:
                if stream.label.isdigit() and int(stream.label) == int(wanted):
                    return stream
        return None

    def participant_sending(self, stream_id: str) -> ParticipantMeta | None:
        """Who sends on ``stream_id``, preferring participants still in the call."""
        senders = [p for p in self.participants if stream_id in p.send_stream_ids]
        return next((p for p in senders if p.active), senders[0] if senders else None)


@dataclass(frozen=True, slots=True)
class ParticipantChanges:
    joined: list[ParticipantMeta]
    left: list[ParticipantMeta]


def normalise_aor(raw: str) -> str | None:
    """Display form of an AOR: ``user@host`` without scheme, parameters or brackets."""
    text = raw.strip()
    bracketed = _URI_IN_BRACKETS_RE.search(text)
    if bracketed is not None:
        text = bracketed.group(1).strip()
    lowered = text.lower()
    for scheme in ("sips:", "sip:", "tel:"):
        if lowered.startswith(scheme):
            text = text[len(scheme) :]
            break
    text = text.split("?", 1)[0]
    if "@" in text:
        user, _, host = text.rpartition("@")
        user = user.split(";", 1)[0].split(":", 1)[0].strip()
        host = host.split(";", 1)[0].strip().lower()
        if not host:
            return user or None
        return f"{user}@{host}" if user else host
    text = text.split(";", 1)[0].strip()
    return text or None


def union(first: Iterable[str], second: Iterable[str]) -> list[str]:
    seen: dict[str, None] = dict.fromkeys(first)
    seen.update(dict.fromkeys(second))
    return list(seen)


def _merge_session(old: CommunicationSessionMeta, new: CommunicationSessionMeta) -> CommunicationSessionMeta:
    return replace(
        old,
        sip_call_ids=union(old.sip_call_ids, new.sip_call_ids),
        sip_session_ids=union(old.sip_session_ids, new.sip_session_ids),
        group_ref=new.group_ref or old.group_ref,
        start_time=new.start_time or old.start_time,
        stop_time=new.stop_time or old.stop_time,
        extensions=union(old.extensions, new.extensions),
    )


def _merge_participant(old: ParticipantMeta, new: ParticipantMeta) -> ParticipantMeta:
    # A partial update that mentions a participant's streams restates them in
    # full (RFC 7865 hold example: only <recv> left means it stopped sending).
    streams_from = new if new.has_stream_association else old
    return replace(
        old,
        aor=new.aor if new.aor_raw else old.aor,
        aor_raw=new.aor_raw or old.aor_raw,
        display_name=new.display_name or old.display_name,
        send_stream_ids=list(streams_from.send_stream_ids),
        recv_stream_ids=list(streams_from.recv_stream_ids),
        associate_time=new.associate_time or old.associate_time,
        disassociate_time=new.disassociate_time or old.disassociate_time,
        role_hint=new.role_hint or old.role_hint,
        session_ids=union(old.session_ids, new.session_ids),
        extensions=union(old.extensions, new.extensions),
        has_stream_association=old.has_stream_association or new.has_stream_association,
    )


def _merge_stream(old: StreamMeta, new: StreamMeta) -> StreamMeta:
    return replace(
        old,
        session_id=new.session_id or old.session_id,
        label=new.label or old.label,
        associate_time=new.associate_time or old.associate_time,
        disassociate_time=new.disassociate_time or old.disassociate_time,
        extensions=union(old.extensions, new.extensions),
    )


def apply_update(previous: RecordingMetadata | None, update: RecordingMetadata) -> RecordingMetadata:
    """The metadata in force after ``update``: a complete snapshot replaces, a partial one merges."""
    if previous is None or update.data_mode == "complete":
        return update
    sessions = {s.session_id: s for s in previous.sessions}
    for s in update.sessions:
        sessions[s.session_id] = _merge_session(sessions[s.session_id], s) if s.session_id in sessions else s
    participants = {p.participant_id: p for p in previous.participants}
    for p in update.participants:
        old = participants.get(p.participant_id)
        participants[p.participant_id] = _merge_participant(old, p) if old is not None else p
    streams = {s.stream_id: s for s in previous.streams}
    for st in update.streams:
        streams[st.stream_id] = _merge_stream(streams[st.stream_id], st) if st.stream_id in streams else st
    return RecordingMetadata(
        data_mode=previous.data_mode,
        sessions=list(sessions.values()),
        participants=list(participants.values()),
        streams=list(streams.values()),
        group_ids=union(previous.group_ids, update.group_ids),
        extensions=union(previous.extensions, update.extensions),
        external_ids={**previous.external_ids, **update.external_ids},
    )


def diff_participants(old: RecordingMetadata | None, new: RecordingMetadata) -> ParticipantChanges:
    """Who joined and who left between two snapshots (transfer, conference, three-way call).

    Participants are matched by id, then by AOR: several SRCs mint fresh
    participant ids in every snapshot. A participant with a disassociate time
    counts as gone.
    """
    before = old.active_participants if old is not None else []
    after = new.active_participants
    unmatched_before = list(before)
    unmatched_after: list[ParticipantMeta] = []
    for participant in after:
        match = next((p for p in unmatched_before if p.participant_id == participant.participant_id), None)
        if match is not None:
            unmatched_before.remove(match)
        else:
            unmatched_after.append(participant)
    joined: list[ParticipantMeta] = []
    for participant in unmatched_after:
        match = next(
            (p for p in unmatched_before if participant.aor is not None and p.aor == participant.aor), None
        )
        if match is not None:
            unmatched_before.remove(match)
        else:
            joined.append(participant)
    return ParticipantChanges(joined=joined, left=unmatched_before)
