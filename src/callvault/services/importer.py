"""Import of recordings made elsewhere (PBX and cloud recorders): WAV, FLAC, MP3, Ogg.

A stereo file is taken as agent on the left, customer on the right (the
convention of the archive format); a mono file is stored as a mixed recording
and flagged so. Rates are kept at 8 kHz (narrowband) or 16 kHz (wideband):
anything above 16 kHz is speech captured at music rates and is stored at
16 kHz, which Opus's wideband mode covers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import numpy as np

from callvault.errors import InvalidInput, PayloadTooLarge, UnsupportedMedia
from callvault.media.archive import decode_audio, encode_archive
from callvault.media.mixing import resample
from callvault.services.access import Action, Principal, require
from callvault.services.call_record import (
    AGENT_CHANNEL,
    CUSTOMER_CHANNEL,
    MIXED_CHANNEL,
    ArchiveAudio,
    CallRecord,
    ParticipantRecord,
    StreamRecord,
)
from callvault.services.directory import AgentDirectory
from callvault.services.recordings import RecordingService

MAX_IMPORT_SECONDS = 6 * 3600


@dataclass
class ImportRequest:
    agent: str | None = None
    customer: str | None = None
    direction: Literal["inbound", "outbound"] | None = None
    started_at: datetime | None = None
    queue: str | None = None
    tags: list[str] = field(default_factory=list)
    filename: str | None = None


def archive_rate(rate: int) -> int:
    return 8000 if rate <= 8000 else 16000


class AudioImporter:
    def __init__(
        self,
        recordings: RecordingService,
        directory: AgentDirectory,
        bitrate_per_channel: int,
        max_bytes: int,
        silence_gate_dbfs: float | None = None,
    ) -> None:
        self._recordings = recordings
        self._directory = directory
        self._bitrate = bitrate_per_channel
        self._gate = silence_gate_dbfs
        self._max_bytes = max_bytes

    def import_bytes(self, principal: Principal, data: bytes, request: ImportRequest) -> str:
        require(principal, Action.RECORDING_UPLOAD)
        if not data:
            raise InvalidInput("the audio file is empty")
        if len(data) > self._max_bytes:
            raise PayloadTooLarge(f"the audio file is larger than {self._max_bytes} bytes")
        if request.direction not in (None, "inbound", "outbound"):
            raise InvalidInput("direction must be inbound or outbound")
        agent_user_id = self._agent_user(request.agent)
        agent_identity = (
            (self._directory.identity_of(agent_user_id) or request.agent) if agent_user_id else None
        )
        try:
            decoded = decode_audio(data, max_seconds=MAX_IMPORT_SECONDS)
        except ValueError as exc:
            raise UnsupportedMedia(f"cannot import {request.filename or 'file'}: {exc}") from None
        if decoded.pcm.shape[1] == 0:
            raise InvalidInput("the audio file contains no samples")
        rate = archive_rate(decoded.sample_rate)
        pcm = decoded.pcm
        if rate != decoded.sample_rate:
            pcm = np.stack([resample(channel, decoded.sample_rate, rate) for channel in pcm])
        mixed = pcm.shape[0] == 1
        if pcm.shape[0] > 2:
            pcm = pcm[:2]
        archive = encode_archive(np.ascontiguousarray(pcm), rate, self._bitrate, silence_gate_dbfs=self._gate)
        duration = pcm.shape[1] / rate
        participants = []
        if agent_identity is not None:
            participants.append(ParticipantRecord(aor=agent_identity, role="agent", user_id=agent_user_id))
        if request.customer:
            participants.append(ParticipantRecord(aor=request.customer, role="customer"))
        call = CallRecord(
            started_at=request.started_at or datetime.now(UTC),
            source="import",
            direction=request.direction,
            calling_number=request.customer if request.direction == "inbound" else None,
            called_number=request.customer if request.direction == "outbound" else None,
            queue=request.queue,
            tags=request.tags,
            participants=participants,
        )
        if mixed:
            streams = [StreamRecord(label="mixed", codec="import", channel=MIXED_CHANNEL)]
        else:
            streams = [
                StreamRecord(
                    label="left", codec="import", channel=AGENT_CHANNEL, participant_aor=agent_identity
                ),
                StreamRecord(
                    label="right", codec="import", channel=CUSTOMER_CHANNEL, participant_aor=request.customer
                ),
            ]
        audio = ArchiveAudio(
            data=archive, sample_rate=rate, channels=pcm.shape[0], duration_seconds=duration, mixed=mixed
        )
        return self._recordings.store_new(call, audio, streams)

    def _agent_user(self, agent: str | None) -> int | None:
        if not agent:
            return None
        user_id = self._directory.resolve_user(agent)
        if user_id is None:
            raise InvalidInput(f"agent {agent!r} is neither a user nor a registered SIP identity")
        return user_id
