"""What an SDP ``a=rtpmap`` line promises about an RTP payload type."""

from __future__ import annotations

from dataclasses import dataclass

# RFC 3551 static payload types callvault can decode.
STATIC_PAYLOAD_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("PCMU", 8000, 1),
    8: ("PCMA", 8000, 1),
    9: ("G722", 8000, 1),
    13: ("CN", 8000, 1),
    18: ("G729", 8000, 1),
}


@dataclass(frozen=True)
class CodecSpec:
    payload_type: int
    encoding: str  # upper-case encoding name as in rtpmap: PCMU, PCMA, G722, G729, OPUS, TELEPHONE-EVENT, CN
    clock_rate: int
    channels: int = 1

    @property
    def is_telephone_event(self) -> bool:
        return self.encoding == "TELEPHONE-EVENT"

    @property
    def is_comfort_noise(self) -> bool:
        return self.encoding == "CN"

    @classmethod
    def static(cls, payload_type: int) -> CodecSpec:
        try:
            encoding, rate, channels = STATIC_PAYLOAD_TYPES[payload_type]
        except KeyError:
            raise ValueError(
                f"payload type {payload_type} is not a known static type and has no rtpmap"
            ) from None
        return cls(payload_type, encoding, rate, channels)
