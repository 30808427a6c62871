"""How the recorder answers each offered m= line: codec, SRTP key, direction, hold.

Kept apart from the server so the rules read in one place:

* only audio is recorded; other media and offered port 0 are rejected (port 0);
* the first offered codec the renderer can decode wins (SRC's preference),
  plus ``telephone-event`` when offered (RFC 4733 digits are kept as events);
* ``RTP/SAVP`` streams need an ``a=crypto`` with a supported suite; the answer
  carries our own fresh key with the same tag and suite (RFC 4568 §5.1.2);
* the recorder only receives: ``recvonly``, or ``inactive`` while the SRC holds
  the stream (``c=0.0.0.0``, ``a=inactive``, ``a=recvonly``, port 0).
"""

from __future__ import annotations

from dataclasses import dataclass

from callvault.media.codec_spec import CodecSpec
from callvault.rtp.srtp import SdesCrypto, generate_crypto_line
from callvault.sip.sdp import Direction, MediaDescription, SessionDescription

DECODABLE_ENCODINGS = frozenset({"PCMU", "PCMA", "G722", "OPUS"})
# What the recorder offers itself when an INVITE comes without SDP (delayed offer).
DELAYED_OFFER_CODECS = [
    CodecSpec(0, "PCMU", 8000),
    CodecSpec(8, "PCMA", 8000),
    CodecSpec(9, "G722", 8000),
    CodecSpec(101, "TELEPHONE-EVENT", 8000),
]


@dataclass(frozen=True)
class StreamPlan:
    index: int
    label: str
    accepted: bool
    reason: str | None = None  # why a stream was rejected
    codecs: tuple[CodecSpec, ...] = ()
    srtp: SdesCrypto | None = None  # the SRC's key: what we decrypt with
    answer_crypto: str | None = None  # our a=crypto value
    on_hold: bool = False

    @property
    def answer_direction(self) -> Direction:
        return "inactive" if self.on_hold else "recvonly"


def stream_labels(offer: SessionDescription) -> list[str]:
    """``a=label`` of each m= line; unlabelled lines get their 1-based position."""
    labels: list[str] = []
    for index, media in enumerate(offer.media):
        label = media.label or str(index + 1)
        if label in labels:
            label = f"m{index}"
        labels.append(label)
    return labels


def _choose_codecs(media: MediaDescription) -> tuple[CodecSpec, ...]:
    offered = media.codecs()
    audio = next((c for c in offered if c.encoding in DECODABLE_ENCODINGS), None)
    if audio is None:
        return ()
    chosen = [audio]
    events = [c for c in offered if c.is_telephone_event]
    if events:
        chosen.append(next((c for c in events if c.clock_rate == audio.clock_rate), events[0]))
    return tuple(chosen)


def _choose_crypto(media: MediaDescription) -> tuple[SdesCrypto | None, str | None, str | None]:
    """(their key, our answer attribute, error)."""
    errors: list[str] = []
    for value in media.crypto:
        try:
            theirs = SdesCrypto.parse(value)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        ours, _ = generate_crypto_line(theirs.tag, theirs.suite)
        return theirs, ours, None
    return None, None, "; ".join(errors) or "RTP/SAVP stream without a=crypto"


def plan_streams(
    offer: SessionDescription, previous: dict[str, StreamPlan] | None = None
) -> list[StreamPlan]:
    """One plan per offered m= line, in order.

    ``previous`` (by label) keeps the SRTP answer key stable across re-offers
    when the SRC keeps its own key.
    """
    plans: list[StreamPlan] = []
    for index, (media, label) in enumerate(zip(offer.media, stream_labels(offer), strict=True)):
        if media.kind != "audio":
            plans.append(StreamPlan(index, label, False, f"{media.kind} is not recorded"))
            continue
        if media.port == 0:
            plans.append(StreamPlan(index, label, False, "stream disabled by the offer (port 0)"))
            continue
        codecs = _choose_codecs(media)
        if not codecs:
            names = ", ".join(c.encoding for c in media.codecs()) or "none"
            plans.append(StreamPlan(index, label, False, f"no decodable codec offered ({names})"))
            continue
        srtp: SdesCrypto | None = None
        answer_crypto: str | None = None
        if media.is_srtp:
            srtp, answer_crypto, error = _choose_crypto(media)
            if srtp is None:
                plans.append(StreamPlan(index, label, False, error))
                continue
            earlier = previous.get(label) if previous else None
            if earlier is not None and earlier.srtp == srtp and earlier.answer_crypto is not None:
                answer_crypto = earlier.answer_crypto
        direction = media.direction or offer.direction
        on_hold = offer.is_on_hold(media) or direction == "recvonly"
        plans.append(StreamPlan(index, label, True, None, codecs, srtp, answer_crypto, on_hold))
    return plans
