"""The signed manifest of a recording: hashes plus core metadata, from catalog rows.

The manifest is rebuilt from the catalog at verification time and compared
with the stored, signed one, so a changed byte in any row of a recording
(recording, call, identifiers, participants, streams, tags, events) fails
verification. Fields that legitimately change without re-signing (the
wrapped data key after ``keys rotate``) are left out; they are protected by
their own authenticated encryption instead.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from callvault.db.models import (
    Call,
    CallIdentifier,
    Participant,
    Recording,
    RecordingEvent,
    RecordingTag,
    Stream,
)

MANIFEST_VERSION = 1


def iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    # SQLite returns naive datetimes for timezone-aware columns; they are UTC.
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


# Built once: a manifest is signed on every seal, and a statement built per call costs more
# Python than running it (each new statement object is coerced and given a cache key again).
_STREAMS = select(Stream.label, Stream.codec, Stream.channel, Stream.participant_aor, Stream.stats).where(
    Stream.recording_id == bindparam("recording_id")
)
_EVENTS = select(RecordingEvent.kind, RecordingEvent.offset_seconds, RecordingEvent.data).where(
    RecordingEvent.recording_id == bindparam("recording_id")
)
_IDENTIFIERS = select(CallIdentifier.kind, CallIdentifier.value).where(
    CallIdentifier.call_id == bindparam("call_id")
)
_PARTICIPANTS = select(
    Participant.aor,
    Participant.display_name,
    Participant.number,
    Participant.role,
    Participant.user_id,
    Participant.joined_at,
    Participant.left_at,
).where(Participant.call_id == bindparam("call_id"))
_TAGS = select(RecordingTag.tag).where(RecordingTag.recording_id == bindparam("recording_id"))

# The same columns for many calls or recordings at once (expanding IN), for build_manifests.
_CALLS_IN = select(
    Call.id,
    Call.direction,
    Call.started_at,
    Call.ended_at,
    Call.calling_number,
    Call.called_number,
    Call.queue,
    Call.source,
    Call.vendor_metadata,
).where(Call.id.in_(bindparam("ids", expanding=True)))
_IDENTIFIERS_IN = select(CallIdentifier.call_id, CallIdentifier.kind, CallIdentifier.value).where(
    CallIdentifier.call_id.in_(bindparam("ids", expanding=True))
)
_PARTICIPANTS_IN = select(Participant.call_id, *_PARTICIPANTS.selected_columns).where(
    Participant.call_id.in_(bindparam("ids", expanding=True))
)
_STREAMS_IN = select(Stream.recording_id, *_STREAMS.selected_columns).where(
    Stream.recording_id.in_(bindparam("ids", expanding=True))
)
_TAGS_IN = select(RecordingTag.recording_id, RecordingTag.tag).where(
    RecordingTag.recording_id.in_(bindparam("ids", expanding=True))
)
_EVENTS_IN = select(RecordingEvent.recording_id, *_EVENTS.selected_columns).where(
    RecordingEvent.recording_id.in_(bindparam("ids", expanding=True))
)


def build_manifest(session: Session, recording: Recording) -> dict[str, Any]:
    """The manifest of ``recording`` from its rows, as stored (pending changes flushed first)."""
    session.flush()
    connection = session.connection()
    streams = connection.execute(_STREAMS, {"recording_id": recording.id}).all()
    events = connection.execute(_EVENTS, {"recording_id": recording.id}).all()
    return build_manifest_with(session, recording, streams, events)


def build_manifest_with(
    session: Session, recording: Recording, streams: Sequence[Any], events: Sequence[Any]
) -> dict[str, Any]:
    """:func:`build_manifest` with the streams and events given (sealing has just written them).

    ``streams`` and ``events`` are anything with the rows' attributes (``label``,
    ``codec``, ``channel``, ``participant_aor``, ``stats``; ``kind``,
    ``offset_seconds``, ``data``) holding the values as the catalog returns them.
    The call's rows are read as plain columns: no ORM objects to build for a
    manifest, which is signed on every seal.
    """
    call = session.get(Call, recording.call_id)
    connection = session.connection()
    identifiers = connection.execute(_IDENTIFIERS, {"call_id": recording.call_id}).all()
    participants = connection.execute(_PARTICIPANTS, {"call_id": recording.call_id}).all()
    tags = connection.execute(_TAGS, {"recording_id": recording.id}).scalars().all()
    return _assemble(recording, call, identifiers, participants, streams, tags, events)


def build_manifests(session: Session, recordings: Sequence[Recording]) -> dict[str, dict[str, Any]]:
    """:func:`build_manifest` of many recordings with six queries in all (bulk deletions).

    Rows are read as plain columns, as :func:`build_manifest` does: building ORM objects
    for every call, participant and stream of a batch cost more than signing it.
    """
    session.flush()
    call_ids = [r.call_id for r in recordings]
    ids = [r.id for r in recordings]
    connection = session.connection()
    calls = {c.id: c for c in connection.execute(_CALLS_IN, {"ids": call_ids})}
    by_call: dict[str, list[Any]] = defaultdict(list)
    for row in connection.execute(_IDENTIFIERS_IN, {"ids": call_ids}):
        by_call["i" + row.call_id].append(row)
    for row in connection.execute(_PARTICIPANTS_IN, {"ids": call_ids}):
        by_call["p" + row.call_id].append(row)
    by_recording: dict[str, list[Any]] = defaultdict(list)
    for row in connection.execute(_STREAMS_IN, {"ids": ids}):
        by_recording["s" + row.recording_id].append(row)
    for rid, tag in connection.execute(_TAGS_IN, {"ids": ids}):
        by_recording["t" + rid].append(tag)
    for row in connection.execute(_EVENTS_IN, {"ids": ids}):
        by_recording["e" + row.recording_id].append(row)
    return {
        r.id: _assemble(
            r,
            calls.get(r.call_id),
            by_call["i" + r.call_id],
            by_call["p" + r.call_id],
            by_recording["s" + r.id],
            by_recording["t" + r.id],
            by_recording["e" + r.id],
        )
        for r in recordings
    }


def _assemble(
    recording: Recording,
    call: Any,
    identifiers: Sequence[Any],
    participants: Sequence[Any],
    streams: Sequence[Any],
    tags: Sequence[str],
    events: Sequence[Any],
) -> dict[str, Any]:
    # Rows are ORM objects or plain column rows: only their attributes are read.
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        # Which key signed it, so a manifest signed before a key rotation is checked with the old key.
        "signing_key_id": recording.signing_key_id,
        "recording": {
            "id": recording.id,
            "status": recording.status,
            "started_at": iso(recording.started_at),
            "duration_seconds": recording.duration_seconds,
            "direction": recording.direction,
            "queue": recording.queue,
            "customer_number": recording.customer_number,
            "agent_user_id": recording.agent_user_id,
            "team_id": recording.team_id,
            "object_key": recording.object_key,
            "format": recording.format,
            "sample_rate": recording.sample_rate,
            "channels": recording.channels,
            "mixed": recording.mixed,
            "audio_size": recording.audio_size,
            "object_size": recording.object_size,
            "audio_sha256": recording.audio_sha256,
            "object_sha256": recording.object_sha256,
            "completeness": recording.completeness,
            "created_at": iso(recording.created_at),
            "finalized_at": iso(recording.finalized_at),
            "key_destroyed_at": iso(recording.key_destroyed_at),
        },
        "call": None
        if call is None
        else {
            "id": call.id,
            "direction": call.direction,
            "started_at": iso(call.started_at),
            "ended_at": iso(call.ended_at),
            "calling_number": call.calling_number,
            "called_number": call.called_number,
            "queue": call.queue,
            "source": call.source,
            "vendor_metadata_sha256": hashlib.sha256(call.vendor_metadata.encode()).hexdigest()
            if call.vendor_metadata
            else None,
        },
        "identifiers": sorted([i.kind, i.value] for i in identifiers),
        "participants": sorted(
            (
                [p.aor, p.display_name, p.number, p.role, p.user_id, iso(p.joined_at), iso(p.left_at)]
                for p in participants
            ),
            key=repr,
        ),
        "streams": sorted(
            ([s.label, s.codec, s.channel, s.participant_aor, s.stats] for s in streams),
            key=repr,
        ),
        "tags": sorted(tags),
        "events": sorted(([e.kind, e.offset_seconds, e.data] for e in events), key=repr),
    }
    if recording.deleted_at is not None:
        # A tombstone signs why and when it was deleted; only present once deleted, so
        # manifests of live recordings are unchanged.
        manifest["tombstone"] = {
            "deleted_at": iso(recording.deleted_at),
            "reason": recording.deletion_reason,
            "basis": recording.deletion_basis,
            "subject_hashes": sorted(recording.subject_hashes or []),
        }
    if recording.ingest_source is not None:
        # Only present when known, so manifests signed before it existed still verify.
        manifest["source"] = recording.ingest_source
    return manifest
