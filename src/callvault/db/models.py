"""Catalog schema, in RFC 7865's vocabulary.

A *communication session* (:class:`Call`) is the recorded call: its SIP
Call-IDs and vendor ids (:class:`CallIdentifier`), direction, numbers, queue.
Its *participants* (:class:`Participant`) join and leave; a *recording
session* produces a :class:`Recording` (the vault object plus its hashes,
wrapped key and signed manifest) made of *streams* (:class:`Stream`).

Search columns (agent, team, customer number, time, queue, direction,
duration, status) are copied onto ``recordings`` so that every filter in
``GET /recordings`` is answered from one table by a composite index that
starts with the filter and ends with ``started_at`` (the default sort).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), index=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The first-start admin's one-time password may only be used to choose a new one.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Regulated staff (migration must_record_0004): no recording rule may stop their calls being
    # recorded, and a call of theirs that was not recorded whole raises an alert.
    must_record: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    team: Mapped[Team | None] = relationship()
    sip_identities: Mapped[list[SipIdentity]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class SipIdentity(Base):
    """An AOR user part, extension or E.164 number that identifies an agent on calls."""

    __tablename__ = "sip_identities"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    identity: Mapped[str] = mapped_column(String(255), unique=True)
    user: Mapped[User] = relationship(back_populates="sip_identities")


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user: Mapped[User] = relationship()


class Call(Base):
    """The communication session that was recorded."""

    __tablename__ = "calls"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    direction: Mapped[str | None] = mapped_column(String(16))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    calling_number: Mapped[str | None] = mapped_column(String(64))
    called_number: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(32))
    vendor_metadata: Mapped[str | None] = mapped_column(Text)
    identifiers: Mapped[list[CallIdentifier]] = relationship(
        back_populates="call", cascade="all, delete-orphan"
    )
    participants: Mapped[list[Participant]] = relationship(
        back_populates="call", cascade="all, delete-orphan"
    )


class CallIdentifier(Base):
    """A SIP Call-ID or vendor id (Cisco GUID, UCID, BroadWorks tracking id) of a call."""

    __tablename__ = "call_identifiers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    value: Mapped[str] = mapped_column(String(255), index=True)
    call: Mapped[Call] = relationship(back_populates="identifiers")


class Participant(Base):
    __tablename__ = "participants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    aor: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(200))
    number: Mapped[str | None] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    joined_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    left_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Where the party's number is from (US-CA, DE; migration consent_0005), for consent law.
    jurisdiction: Mapped[str | None] = mapped_column(String(8))
    call: Mapped[Call] = relationship(back_populates="participants")


class Recording(Base):
    __tablename__ = "recordings"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    # Search columns copied from the call and its participants (see module docstring).
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    direction: Mapped[str | None] = mapped_column(String(16))
    queue: Mapped[str | None] = mapped_column(String(120))
    customer_number: Mapped[str | None] = mapped_column(String(32))
    agent_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    # Vault object.
    object_key: Mapped[str | None] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(32))
    sample_rate: Mapped[int | None] = mapped_column(Integer)
    channels: Mapped[int | None] = mapped_column(Integer)
    mixed: Mapped[bool] = mapped_column(Boolean, default=False)
    audio_size: Mapped[int | None] = mapped_column(Integer)
    object_size: Mapped[int | None] = mapped_column(Integer)
    audio_sha256: Mapped[str | None] = mapped_column(String(64))
    object_sha256: Mapped[str | None] = mapped_column(String(64))
    kek_id: Mapped[str | None] = mapped_column(String(64))
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_destroyed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    manifest: Mapped[str | None] = mapped_column(Text)
    manifest_signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    signing_key_id: Mapped[str | None] = mapped_column(String(64))
    completeness: Mapped[dict[str, object] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finalized_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who handed the recording in, from where, when received (IngestSource.to_dict() + received_at).
    ingest_source: Mapped[dict[str, object] | None] = mapped_column(JSON)
    # Retention conditions (migration retention_0003): consent as recorded, free regulation labels.
    consent_state: Mapped[str | None] = mapped_column(String(32))
    # The strictest consent requirement among the call's parties (migration consent_0005; None: unknown).
    consent_requirement: Mapped[str | None] = mapped_column(String(32))
    labels: Mapped[list[str] | None] = mapped_column(JSON)
    # Tombstone: set when the recording is deleted (services/deletion.py). deletion_state is
    # "pending" between the committed crypto-shred and the removal of its objects.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deletion_reason: Mapped[str | None] = mapped_column(String(32))
    deletion_basis: Mapped[str | None] = mapped_column(String(200))
    subject_hashes: Mapped[list[str] | None] = mapped_column(JSON)
    deletion_state: Mapped[str | None] = mapped_column(String(16), index=True)
    # Recording rules (migration rules_0005): the rule that decided, its action; an on-demand
    # call's keep request (see services/recording_rules.py, db/rule_models.py).
    rule_name: Mapped[str | None] = mapped_column(String(120))
    rule_action: Mapped[str | None] = mapped_column(String(16))
    kept_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    call: Mapped[Call] = relationship()
    streams: Mapped[list[Stream]] = relationship(back_populates="recording", cascade="all, delete-orphan")
    tags: Mapped[list[RecordingTag]] = relationship(back_populates="recording", cascade="all, delete-orphan")
    events: Mapped[list[RecordingEvent]] = relationship(
        back_populates="recording", cascade="all, delete-orphan"
    )

    __table_args__ = (
        # Each search index ends in the id tie-breaker of the search's ORDER BY, so the
        # index order is the page order (migration 0002_search_order).
        Index("ix_recordings_started", "started_at", "id"),
        Index("ix_recordings_agent_started", "agent_user_id", "started_at", "id"),
        Index("ix_recordings_team_started", "team_id", "started_at", "id"),
        Index("ix_recordings_customer_started", "customer_number", "started_at", "id"),
        Index("ix_recordings_queue_started", "queue", "started_at", "id"),
        Index("ix_recordings_direction_started", "direction", "started_at", "id"),
        Index("ix_recordings_status_started", "status", "started_at", "id"),
        Index("ix_recordings_duration", "duration_seconds", "id"),
        Index("ix_recordings_consent_requirement_started", "consent_requirement", "started_at", "id"),
    )


class Stream(Base):
    __tablename__ = "streams"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(64))
    codec: Mapped[str | None] = mapped_column(String(32))
    channel: Mapped[int] = mapped_column(Integer)
    participant_aor: Mapped[str | None] = mapped_column(String(255))
    stats: Mapped[dict[str, object] | None] = mapped_column(JSON)
    recording: Mapped[Recording] = relationship(back_populates="streams")


class RecordingTag(Base):
    __tablename__ = "recording_tags"
    recording_id: Mapped[str] = mapped_column(
        ForeignKey("recordings.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)
    recording: Mapped[Recording] = relationship(back_populates="tags")
    __table_args__ = (Index("ix_recording_tags_tag", "tag", "recording_id"),)


class RecordingEvent(Base):
    """Something that happened during the call at a point in its audio (DTMF, hold, join)."""

    __tablename__ = "recording_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recording_id: Mapped[str] = mapped_column(ForeignKey("recordings.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    offset_seconds: Mapped[float] = mapped_column(Float)
    data: Mapped[dict[str, object] | None] = mapped_column(JSON)
    recording: Mapped[Recording] = relationship(back_populates="events")


class AccessEvent(Base):
    """Append-only record of every search, view, playback and download (triggers forbid change)."""

    __tablename__ = "access_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str | None] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(32))
    recording_id: Mapped[str | None] = mapped_column(String(36), index=True)
    detail: Mapped[str | None] = mapped_column(Text)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))
    # Hash chain (migration audit_0003, :mod:`callvault.db.audit_chain`): position, link, own hash.
    seq: Mapped[int | None] = mapped_column(Integer)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    entry_hash: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_access_events_seq", "seq", unique=True),
        Index("ix_access_events_user_at", "username", "at"),
        Index("ix_access_events_action_at", "action", "at"),
    )


class AuditCheckpoint(Base):
    """The server key's signature over the audit log's head at ``seq`` (append-only)."""

    __tablename__ = "audit_checkpoints"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary)


class Alert(Base):
    """Something a compliance officer must look at (see :mod:`callvault.services.alerts`).

    ``kind`` says what: a usage limit crossed (``role_limit``, ``baseline``: user, role,
    count, threshold, window), a must-record call not recorded whole (``recording_id``).
    Migration alerts_0004 renamed ``usage_alerts`` and made the usage columns optional.
    """

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(48))
    username: Mapped[str | None] = mapped_column(String(120))
    user_id: Mapped[int | None] = mapped_column(Integer)
    role: Mapped[str | None] = mapped_column(String(32))
    count: Mapped[int | None] = mapped_column(Integer)
    threshold: Mapped[int | None] = mapped_column(Integer)
    window_seconds: Mapped[int | None] = mapped_column(Integer)
    recording_id: Mapped[str | None] = mapped_column(String(36))
    detail: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_alerts_user_at", "username", "at"),
        Index("ix_alerts_kind_at", "kind", "at"),
        Index("ix_alerts_recording", "recording_id"),
    )


class LoginThrottle(Base):
    """Recent failed logins of one username or client address, and its lock-out.

    Kept in the catalog so that every API worker process, and a restart, sees
    the same counts. ``failures`` holds the times (epoch seconds) of at most the
    last N failures: a sliding window of bounded size.
    """

    __tablename__ = "login_throttle"
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[list[float]] = mapped_column(JSON)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    lockouts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class ServerState(Base):
    """Small key/value facts about this installation (e.g. first-start done)."""

    __tablename__ = "server_state"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class SealLogEntry(Base):
    """One signed manifest, appended to a hash chain (see :mod:`callvault.services.seal_log`).

    Append-only (triggers forbid UPDATE and DELETE). ``recording_id`` is not a
    foreign key on purpose: the entry must outlive a deleted recording so that
    ``verify`` can name it.
    """

    __tablename__ = "seal_log"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    recording_id: Mapped[str] = mapped_column(String(36), index=True)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SealCheckpoint(Base):
    """The signing key's signature over the seal log's head at ``seq`` (append-only)."""

    __tablename__ = "seal_checkpoints"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes] = mapped_column(LargeBinary)


__all__ = [
    "AccessEvent",
    "Alert",
    "ApiToken",
    "AuditCheckpoint",
    "Base",
    "Call",
    "CallIdentifier",
    "LoginThrottle",
    "Participant",
    "Recording",
    "RecordingEvent",
    "RecordingTag",
    "SealCheckpoint",
    "SealLogEntry",
    "ServerState",
    "SipIdentity",
    "Stream",
    "Team",
    "User",
]
