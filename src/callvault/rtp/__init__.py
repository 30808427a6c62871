"""Sans-IO RTP: packets, telephone events, wall-clock timelines, statistics, rendering, SRTP.

``callvault.rtp.srtp`` is imported explicitly by callers that need libsrtp.
"""

from callvault.rtp.packet import RtpHeaders, RtpPacket, is_rtcp, parse_headers
from callvault.rtp.render import (
    DecoderFactory,
    PayloadDecoderLike,
    decoders_for,
    render_placements,
    render_stream,
)
from callvault.rtp.stats import StreamStats
from callvault.rtp.telephone_event import EventTracker, TelephoneEvent
from callvault.rtp.timeline import PlacedEvent, Placement, PlacementArrays, StreamTimeline

__all__ = [
    "DecoderFactory",
    "EventTracker",
    "PayloadDecoderLike",
    "PlacedEvent",
    "Placement",
    "PlacementArrays",
    "RtpHeaders",
    "RtpPacket",
    "StreamStats",
    "StreamTimeline",
    "TelephoneEvent",
    "decoders_for",
    "is_rtcp",
    "parse_headers",
    "render_placements",
    "render_stream",
]
