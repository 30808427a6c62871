"""From a SIP body and its Content-Type to what a recording server needs: SDP and metadata.

A SIPREC offer (RFC 7866) is a multipart body with an SDP part and a recording
metadata part; metadata-only UPDATEs carry the metadata alone. A broken
metadata part must not cost the recording: it is reported in
``metadata_error`` so the server can record without metadata or refuse with a
reason, while a body whose framing cannot be understood at all raises
``ValueError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from callvault.sip.metadata import RecordingMetadata, parse_recording_metadata
from callvault.sip.multipart import BodyPart, content_type_essence, parse_multipart

__all__ = [
    "METADATA_CONTENT_TYPES",
    "SiprecOffer",
    "is_metadata_part",
    "is_recording_session",
    "parse_siprec_body",
]

METADATA_CONTENT_TYPES = frozenset({"application/rs-metadata+xml", "application/rs-metadata"})
SDP_CONTENT_TYPE = "application/sdp"
_RECORDING_DISPOSITION = "recording-session"
# Cisco CUBE appends an ISUP GTD part whose GCI is the Cisco GUID of the call, in hex.
_GTD_GCI_RE = re.compile(rb"^GCI,([0-9A-Fa-f]{32})\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class SiprecOffer:
    """The parts of a SIPREC body; ``ignored_parts`` lists the content types left aside."""

    sdp: str | None
    metadata: RecordingMetadata | None
    metadata_error: str | None = None
    ignored_parts: list[str] = field(default_factory=list)
    external_ids: dict[str, str] = field(default_factory=dict)

    @property
    def has_metadata_part(self) -> bool:
        return self.metadata is not None or self.metadata_error is not None


def is_metadata_part(part: BodyPart) -> bool:
    """rs-metadata by Content-Type, or by ``Content-Disposition: recording-session`` when the type is garbled."""
    if part.essence in METADATA_CONTENT_TYPES:
        return True
    return part.disposition == _RECORDING_DISPOSITION and part.essence != SDP_CONTENT_TYPE


def _decode_sdp(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        # Old SBCs put Latin-1 in s= lines; the SDP is still usable.
        return body.decode("latin-1")


def _gtd_ids(part: BodyPart) -> dict[str, str]:
    match = _GTD_GCI_RE.search(part.body)
    return {"cisco_guid": match.group(1).decode("ascii").lower()} if match else {}


def _parse_metadata(body: bytes) -> tuple[RecordingMetadata | None, str | None]:
    try:
        return parse_recording_metadata(body), None
    except ValueError as exc:
        return None, str(exc)


def parse_siprec_body(content_type: str, body: bytes) -> SiprecOffer:
    """Split a SIP message body into SDP, recording metadata and ignored parts.

    An empty body (delayed offer, or a bodiless re-INVITE) gives an empty offer.
    """
    essence = content_type_essence(content_type)
    if not body.strip():
        return SiprecOffer(sdp=None, metadata=None)
    if essence == SDP_CONTENT_TYPE:
        return SiprecOffer(sdp=_decode_sdp(body), metadata=None)
    if essence in METADATA_CONTENT_TYPES:
        only, only_error = _parse_metadata(body)
        return SiprecOffer(
            sdp=None,
            metadata=only,
            metadata_error=only_error,
            external_ids=dict(only.external_ids) if only else {},
        )
    if not essence.startswith("multipart/"):
        raise ValueError(f"unsupported body Content-Type {essence or '(empty)'!r} for a recording session")

    sdp: str | None = None
    metadata: RecordingMetadata | None = None
    error: str | None = None
    seen_metadata = False
    ignored: list[str] = []
    external_ids: dict[str, str] = {}
    for part in parse_multipart(content_type, body):
        if is_metadata_part(part) and not seen_metadata:
            seen_metadata = True
            metadata, error = _parse_metadata(part.body)
        elif part.essence == SDP_CONTENT_TYPE and sdp is None:
            sdp = _decode_sdp(part.body)
        else:
            if part.essence == "application/gtd":
                external_ids.update(_gtd_ids(part))
            ignored.append(part.essence or "(none)")
    if metadata is not None:
        external_ids = {**external_ids, **metadata.external_ids}
    return SiprecOffer(
        sdp=sdp, metadata=metadata, metadata_error=error, ignored_parts=ignored, external_ids=external_ids
    )


def is_recording_session(content_type: str, body: bytes) -> bool:
    """Whether a body makes the request a recording session (RFC 7866), whatever the headers say.

    True for a multipart body with an rs-metadata part, and for a bare
    rs-metadata body (metadata-only UPDATE). Never raises.
    """
    essence = content_type_essence(content_type)
    if essence in METADATA_CONTENT_TYPES:
        return bool(body.strip())
    if not essence.startswith("multipart/"):
        return False
    try:
        parts = parse_multipart(content_type, body)
    except ValueError:
        return False
    return any(is_metadata_part(part) for part in parts)
