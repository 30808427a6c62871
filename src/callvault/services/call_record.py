"""What the capture and import paths hand to the recording service.

Plain data in RFC 7865's words, free of SIP, SQL and storage details, so the
SIPREC recorder, pcap import and file upload all describe a call the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from callvault.media.peaks import Peaks

ParticipantRole = Literal["agent", "customer", "other"]
FinalStatus = Literal["complete", "incomplete", "interrupted"]

# Stereo layout of every archive: agent left, customer right.
AGENT_CHANNEL = 0
CUSTOMER_CHANNEL = 1
MIXED_CHANNEL = -1


@dataclass
class ParticipantRecord:
    aor: str | None
    display_name: str | None = None
    role: ParticipantRole = "other"
    joined_at: datetime | None = None
    left_at: datetime | None = None
    user_id: int | None = None  # the agent's user, when known (imports, or resolved by the SIPREC session)
    resolved: bool = False  # user_id is the directory's answer (None: no agent), not to be asked again


@dataclass
class StreamRecord:
    label: str
    codec: str | None
    channel: int  # AGENT_CHANNEL, CUSTOMER_CHANNEL or MIXED_CHANNEL
    participant_aor: str | None = None
    stats: dict[str, object] = field(default_factory=dict)


@dataclass
class CallEvent:
    kind: str  # "dtmf", "hold", "resume", "participant_joined", "participant_left", ...
    offset_seconds: float
    data: dict[str, object] = field(default_factory=dict)


@dataclass
class CallRecord:
    """The communication session being recorded."""

    started_at: datetime  # timezone-aware UTC
    source: str  # "siprec", "import", "demo", "pcap"
    direction: Literal["inbound", "outbound"] | None = None
    calling_number: str | None = None
    called_number: str | None = None
    queue: str | None = None
    sip_call_ids: list[str] = field(default_factory=list)
    external_ids: dict[str, str] = field(
        default_factory=dict
    )  # cisco_guid, ucid, broadworks_tracking_id, ...
    tags: list[str] = field(default_factory=list)
    vendor_metadata: str | None = None  # opaque extension XML, kept as received
    participants: list[ParticipantRecord] = field(default_factory=list)


@dataclass
class ArchiveAudio:
    """An encoded archive (Ogg Opus; agent left, customer right) ready for the vault."""

    data: bytes
    sample_rate: int
    channels: int
    duration_seconds: float
    mixed: bool = False
    format: str = "ogg-opus"
    # The waveform, taken from the PCM as it was encoded (None: computed from the archive later).
    peaks: Peaks | None = None


@dataclass(frozen=True)
class IngestSource:
    """Who or what handed a recording to callvault; signed into its manifest.

    ``siprec``: the SRC's transport address and, over TLS, its certificate
    subject. ``upload``: the API user and their address. ``import``: the
    callvault user the CLI ran as and the operating-system account. ``capture``:
    the interface a sniffed call was seen on (passive capture).
    """

    kind: Literal["siprec", "upload", "import", "capture"]
    user: str | None = None
    user_id: int | None = None
    address: str | None = None
    tls_subject: str | None = None
    os_user: str | None = None

    @classmethod
    def siprec(cls, transport: str, host: str, port: int, tls_subject: str | None = None) -> IngestSource:
        """The SRC as the SIP transport saw it, e.g. ``tls:[2001:db8::7]:5061``."""
        shown = f"[{host}]" if ":" in host else host
        return cls("siprec", address=f"{transport.lower()}:{shown}:{port}", tls_subject=tls_subject)

    def to_dict(self) -> dict[str, object]:
        fields = {
            "kind": self.kind,
            "user": self.user,
            "user_id": self.user_id,
            "address": self.address,
            "tls_subject": self.tls_subject,
            "os_user": self.os_user,
        }
        return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class CallOpening:
    """The first seconds of a call as the disclosure check compares them.

    ``envelopes`` is ``(channels, frames, bands)``: band energies in dB at 50
    frames a second (:mod:`callvault.media.band_envelope`), one row per
    archive channel, named in ``channels`` ("agent", "customer" or "mixed").
    """

    envelopes: npt.NDArray[np.float16]
    channels: tuple[str, ...]
    window_seconds: float
