"""Import of recordings made elsewhere (PBX and cloud recorders): WAV, FLAC, MP3, Ogg.

A stereo file is taken as agent on the left, customer on the right (the
convention of the archive format); a mono file is stored as a mixed recording
and flagged so. Rates are kept at 8 kHz (narrowband) or 16 kHz (wideband):
anything above 16 kHz is speech at music rates and is stored at 16 kHz,
which Opus's wideband mode covers.

Trust: the file is decoded in a sandboxed worker process
(:mod:`.decoder_sandbox`); a supervisor may only attribute a recording to an
agent of their own team; the start time the uploader claims is kept as
claimed (it is what the recording is searched by) but the signed manifest
records who handed the file in, from where, and when the server received it;
a start time in the future is refused. Every attempt, allowed or refused,
goes into the access trail. A damaged file (cut short, undecodable packets)
is kept as evidence with status ``incomplete`` and its damage named in the
stream statistics, never silently passed as ``complete``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

from callvault.errors import CallvaultError, InvalidInput, PayloadTooLarge, PermissionDenied
from callvault.services.access import Action, Principal, Scope, require
from callvault.services.audit import AccessLog
from callvault.services.call_record import (
    AGENT_CHANNEL,
    CUSTOMER_CHANNEL,
    MIXED_CHANNEL,
    ArchiveAudio,
    CallRecord,
    FinalStatus,
    IngestSource,
    ParticipantRecord,
    StreamRecord,
)
from callvault.services.decoder_sandbox import DecoderSandbox, Transcoded
from callvault.services.directory import AgentDirectory
from callvault.services.recordings import RecordingService

# Clocks of PBXs and uploaders drift; more than this ahead of ours is a claim about the future.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass
class ImportRequest:
    agent: str | None = None
    customer: str | None = None
    direction: Literal["inbound", "outbound"] | None = None
    started_at: datetime | None = None
    queue: str | None = None
    tags: list[str] = field(default_factory=list)
    filename: str | None = None
    source: IngestSource | None = None  # None: an API upload by the principal


@dataclass(frozen=True)
class ImportResult:
    recording_id: str
    status: FinalStatus
    damage: tuple[str, ...]


class AudioImporter:
    def __init__(
        self,
        recordings: RecordingService,
        directory: AgentDirectory,
        access_log: AccessLog,
        sandbox: DecoderSandbox,
        bitrate_per_channel: int,
        max_bytes: int,
        max_seconds: float,
        silence_gate_dbfs: float | None = None,
    ) -> None:
        self._recordings = recordings
        self._directory = directory
        self._log = access_log
        self._sandbox = sandbox
        self._bitrate = bitrate_per_channel
        self._gate = silence_gate_dbfs
        self._max_bytes = max_bytes
        self._max_seconds = max_seconds

    def close(self) -> None:
        """Stop the decoder's idle spare worker."""
        self._sandbox.close()

    def may_upload(self, principal: Principal) -> None:
        """Refuse (and log) a caller whose role may never upload, before any byte of the file is read."""
        try:
            require(principal, Action.RECORDING_UPLOAD)
        except PermissionDenied as exc:
            self.log_refusal(principal, None, exc)
            raise

    def log_refusal(self, principal: Principal, request: ImportRequest | None, exc: CallvaultError) -> None:
        """Record an upload that was refused (also for refusals decided before the importer ran)."""
        outcome = "denied" if isinstance(exc, PermissionDenied) else "refused"
        self._log.record(principal, "upload", detail=_detail(request, exc.message), outcome=outcome)

    def import_bytes(self, principal: Principal, data: bytes, request: ImportRequest) -> str:
        return self.import_file(principal, data, request).recording_id

    def import_file(self, principal: Principal, data: bytes, request: ImportRequest) -> ImportResult:
        try:
            result = self._import(principal, data, request)
        except CallvaultError as exc:
            self.log_refusal(principal, request, exc)
            raise
        detail = ", ".join(filter(None, [_detail(request, None), f"status={result.status}"]))
        self._log.record(principal, "upload", result.recording_id, detail=detail)
        return result

    def _import(self, principal: Principal, data: bytes, request: ImportRequest) -> ImportResult:
        scope = require(principal, Action.RECORDING_UPLOAD)
        if not data:
            raise InvalidInput("the audio file is empty")
        if len(data) > self._max_bytes:
            raise PayloadTooLarge(f"the audio file is larger than {self._max_bytes} bytes")
        if request.direction not in (None, "inbound", "outbound"):
            raise InvalidInput("direction must be inbound or outbound")
        received_at = datetime.now(UTC)
        started_at = request.started_at or received_at
        if started_at.tzinfo is None:
            raise InvalidInput("started_at must include a time zone")
        if started_at > received_at + CLOCK_SKEW:
            raise InvalidInput("started_at is in the future; a recording cannot start after it was received")
        agent_user_id = self._agent_user(request.agent)
        self._check_team(principal, scope, agent_user_id)
        agent_identity = (
            (self._directory.identity_of(agent_user_id) or request.agent) if agent_user_id else None
        )
        try:
            decoded = self._sandbox.transcode(data, self._max_seconds, self._bitrate, self._gate)
        except InvalidInput as exc:
            # Same class (status), the file named: a folder import reports many at once.
            raise type(exc)(f"cannot import {request.filename or 'file'}: {exc.message}") from None
        del data
        participants = []
        if agent_identity is not None:
            participants.append(ParticipantRecord(aor=agent_identity, role="agent", user_id=agent_user_id))
        if request.customer:
            participants.append(ParticipantRecord(aor=request.customer, role="customer"))
        call = CallRecord(
            started_at=started_at,
            source="import",
            direction=request.direction,
            calling_number=request.customer if request.direction == "inbound" else None,
            called_number=request.customer if request.direction == "outbound" else None,
            queue=request.queue,
            tags=request.tags,
            participants=participants,
        )
        mixed = decoded.channels == 1
        streams = _streams(mixed, agent_identity, request.customer, decoded)
        audio = ArchiveAudio(
            data=decoded.archive,
            sample_rate=decoded.sample_rate,
            channels=decoded.channels,
            duration_seconds=decoded.duration_seconds,
            mixed=mixed,
        )
        source = request.source or IngestSource(
            "upload", user=principal.username, user_id=principal.user_id, address=principal.remote_addr
        )
        status: FinalStatus = "incomplete" if decoded.damage else "complete"
        recording_id = self._recordings.store_new(call, audio, streams, status=status, source=source)
        return ImportResult(recording_id, status, decoded.damage)

    def _check_team(self, principal: Principal, scope: Scope, agent_user_id: int | None) -> None:
        """A team-scoped uploader files recordings for agents of their own team only.

        Answered 403, not 404: the agent is named by the uploader, and whether
        a name is an agent is no secret to someone allowed to upload (an
        unknown one is a 400); what is refused is attributing work to them.
        """
        if scope is Scope.ALL:
            return
        if agent_user_id is None:
            raise PermissionDenied("a team supervisor must name an agent of their own team (field 'agent')")
        team = self._directory.team_of(agent_user_id)
        if principal.team_id is None or team != principal.team_id:
            raise PermissionDenied("you may only upload recordings of agents in your own team")

    def _agent_user(self, agent: str | None) -> int | None:
        if not agent:
            return None
        user_id = self._directory.resolve_user(agent)
        if user_id is None:
            raise InvalidInput(f"agent {agent!r} is neither a user nor a registered SIP identity")
        return user_id


def _streams(mixed: bool, agent: str | None, customer: str | None, decoded: Transcoded) -> list[StreamRecord]:
    # Decoder damage is loss: it is kept with the streams, which the manifest signs.
    stats: dict[str, object] = {}
    if decoded.damage:
        stats = {"decode_errors": decoded.decode_errors, "damage": "; ".join(decoded.damage)[:500]}
    if mixed:
        return [StreamRecord(label="mixed", codec="import", channel=MIXED_CHANNEL, stats=stats)]
    return [
        StreamRecord(label="left", codec="import", channel=AGENT_CHANNEL, participant_aor=agent, stats=stats),
        StreamRecord(
            label="right", codec="import", channel=CUSTOMER_CHANNEL, participant_aor=customer, stats=stats
        ),
    ]


def _detail(request: ImportRequest | None, refusal: str | None) -> str:
    parts = []
    if request is not None:
        # Agent names and file names may be phone numbers: the trail names neither.
        if request.started_at:
            parts.append(f"claimed_start={request.started_at.isoformat()}")
    if refusal:
        parts.append(f"refused: {refusal}")
    return ", ".join(parts)
