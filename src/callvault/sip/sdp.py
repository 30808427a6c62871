"""SDP (RFC 4566/8866) as session recording clients send it, and the recorder's answer.

Tolerances from real traces: lower-case encoding names (``pcmu/8000``),
``a=label`` before ``a=rtpmap``, no ``c=`` line at all, ``c=IN IP4 0.0.0.0``
for hold, contradictory direction attributes, LF-only line ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from callvault.media.codec_spec import STATIC_PAYLOAD_TYPES, CodecSpec

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
_DIRECTIONS: tuple[Direction, ...] = ("sendrecv", "sendonly", "recvonly", "inactive")


def last_direction(attributes: list[tuple[str, str | None]]) -> Direction | None:
    """The last direction attribute present: SRCs send contradictions, and the last one wins."""
    found: Direction | None = None
    for key, _ in attributes:
        if key in _DIRECTIONS:
            found = key
    return found


_HOLD_ADDRESSES = {"0.0.0.0", "::"}


@dataclass(frozen=True)
class Origin:
    username: str
    session_id: str
    session_version: str
    nettype: str
    addrtype: str
    address: str

    def __str__(self) -> str:
        return f"{self.username} {self.session_id} {self.session_version} {self.nettype} {self.addrtype} {self.address}"


@dataclass(frozen=True)
class Connection:
    nettype: str
    addrtype: str
    address: str

    @property
    def is_hold(self) -> bool:
        return self.address in _HOLD_ADDRESSES

    @classmethod
    def parse(cls, value: str) -> Connection:
        parts = value.split()
        if len(parts) != 3:
            raise ValueError(f"c={value!r}: expected '<nettype> <addrtype> <address>'")
        # A multicast TTL suffix (addr/ttl) is irrelevant to a unicast recorder.
        return cls(parts[0], parts[1].upper(), parts[2].split("/")[0])

    def __str__(self) -> str:
        return f"{self.nettype} {self.addrtype} {self.address}"


@dataclass
class MediaDescription:
    kind: str
    port: int
    proto: str
    formats: list[str]
    connection: Connection | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def attribute(self, name: str) -> str | None:
        for key, value in self.attributes:
            if key == name:
                return value if value is not None else ""
        return None

    def attribute_values(self, name: str) -> list[str]:
        return [value or "" for key, value in self.attributes if key == name]

    @property
    def label(self) -> str | None:
        value = self.attribute("label")
        return value.strip() if value is not None else None

    @property
    def direction(self) -> Direction | None:
        return last_direction(self.attributes)

    @property
    def rtcp_mux(self) -> bool:
        return self.attribute("rtcp-mux") is not None

    @property
    def crypto(self) -> list[str]:
        """Raw ``a=crypto`` values (RFC 4568), parsed by the RTP layer."""
        return self.attribute_values("crypto")

    @property
    def is_srtp(self) -> bool:
        return "SAVP" in self.proto.upper()

    def codecs(self) -> list[CodecSpec]:
        """Offered payload formats in preference order; unknown dynamic types without rtpmap skipped."""
        rtpmaps: dict[int, CodecSpec] = {}
        for value in self.attribute_values("rtpmap"):
            pt_text, _, encoding = value.strip().partition(" ")
            if not pt_text.isdigit() or "/" not in encoding:
                raise ValueError(f"a=rtpmap:{value!r}: expected '<payload type> <encoding>/<clock rate>'")
            pieces = encoding.strip().split("/")
            if not pieces[1].isdigit():
                raise ValueError(f"a=rtpmap:{value!r}: clock rate is not a number")
            channels = int(pieces[2]) if len(pieces) > 2 and pieces[2].isdigit() else 1
            rtpmaps[int(pt_text)] = CodecSpec(int(pt_text), pieces[0].upper(), int(pieces[1]), channels)
        codecs: list[CodecSpec] = []
        for fmt in self.formats:
            if not fmt.isdigit():
                continue
            pt = int(fmt)
            if pt in rtpmaps:
                codecs.append(rtpmaps[pt])
            elif pt in STATIC_PAYLOAD_TYPES:
                codecs.append(CodecSpec.static(pt))
        return codecs

    def fmtp(self, payload_type: int) -> str | None:
        for value in self.attribute_values("fmtp"):
            pt_text, _, params = value.strip().partition(" ")
            if pt_text == str(payload_type):
                return params.strip()
        return None

    def serialise_lines(self) -> list[str]:
        lines = [f"m={self.kind} {self.port} {self.proto} {' '.join(self.formats)}"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        for key, value in self.attributes:
            lines.append(f"a={key}" if value is None else f"a={key}:{value}")
        return lines


@dataclass
class SessionDescription:
    origin: Origin
    session_name: str = "-"
    connection: Connection | None = None
    timing: str = "0 0"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    media: list[MediaDescription] = field(default_factory=list)
    version: int = 0

    def connection_for(self, media: MediaDescription) -> Connection | None:
        """Media-level ``c=`` overrides session-level (RFC 4566 §5.7)."""
        return media.connection or self.connection

    def is_on_hold(self, media: MediaDescription) -> bool:
        connection = self.connection_for(media)
        session_direction = self.direction
        direction = media.direction or session_direction
        return (connection is not None and connection.is_hold) or direction == "inactive" or media.port == 0

    @property
    def direction(self) -> Direction | None:
        return last_direction(self.attributes)

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValueError(f"SDP is not UTF-8 (byte {exc.start})") from None
        origin: Origin | None = None
        session = cls(origin=Origin("-", "0", "0", "IN", "IP4", "0.0.0.0"))
        current: MediaDescription | None = None
        version_seen = False
        for number, raw in enumerate(text.replace("\r\n", "\n").split("\n"), start=1):
            line = raw.strip()
            if not line:
                continue
            if len(line) < 2 or line[1] != "=":
                raise ValueError(f"SDP line {number} {line[:40]!r}: expected '<type>=<value>'")
            kind, value = line[0], line[2:]
            if kind == "v":
                if value.strip() != "0":
                    raise ValueError(f"SDP line {number}: unsupported version v={value}")
                version_seen = True
            elif kind == "o":
                parts = value.split()
                if len(parts) != 6:
                    raise ValueError(f"SDP line {number}: o= needs 6 fields, got {len(parts)}")
                origin = Origin(*parts)
            elif kind == "s":
                session.session_name = value
            elif kind == "t":
                session.timing = value
            elif kind == "c":
                connection = Connection.parse(value)
                if current is None:
                    session.connection = connection
                else:
                    current.connection = connection
            elif kind == "m":
                current = _parse_media_line(value, number)
                session.media.append(current)
            elif kind == "a":
                name, sep, attr_value = value.partition(":")
                attribute = (name.strip().lower(), attr_value if sep else None)
                (current.attributes if current is not None else session.attributes).append(attribute)
        if not version_seen:
            raise ValueError("SDP has no v= line")
        if origin is None:
            raise ValueError("SDP has no o= line")
        session.origin = origin
        return session

    def serialise(self) -> str:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines.append(f"t={self.timing}")
        for key, value in self.attributes:
            lines.append(f"a={key}" if value is None else f"a={key}:{value}")
        for media in self.media:
            lines.extend(media.serialise_lines())
        return "\r\n".join(lines) + "\r\n"


def _parse_media_line(value: str, number: int) -> MediaDescription:
    parts = value.split()
    if len(parts) < 4:
        raise ValueError(f"SDP line {number}: m= needs '<media> <port> <proto> <fmt> ...'")
    port_text = parts[1].split("/")[0]
    if not port_text.isdigit() or int(port_text) > 65535:
        raise ValueError(f"SDP line {number}: m= port {parts[1]!r} is not a port number")
    return MediaDescription(kind=parts[0].lower(), port=int(port_text), proto=parts[2], formats=parts[3:])


@dataclass(frozen=True)
class StreamAnswer:
    """How the recorder answers one offered m= line."""

    port: int  # 0 rejects the stream (RFC 3264 §6)
    codecs: list[CodecSpec]  # chosen audio codec first, then telephone-event if offered
    crypto: str | None = None  # our a=crypto value when the stream is SRTP
    direction: Direction = "recvonly"


def build_answer(
    offer: SessionDescription,
    answers: list[StreamAnswer],
    *,
    address: str,
    session_id: str,
    session_version: int,
) -> SessionDescription:
    """An answer with one m= line per offered one, in order (RFC 3264 §6).

    The recorder only receives, so accepted streams are ``recvonly`` (or
    ``inactive`` while the client holds them).
    """
    if len(answers) != len(offer.media):
        raise ValueError(f"{len(answers)} stream answers for {len(offer.media)} offered m= lines")
    addrtype = "IP6" if ":" in address else "IP4"
    answer = SessionDescription(
        origin=Origin("callvault", session_id, str(session_version), "IN", addrtype, address),
        session_name="callvault",
        connection=Connection("IN", addrtype, address),
    )
    for offered, stream in zip(offer.media, answers, strict=True):
        if stream.port == 0 or not stream.codecs:
            answer.media.append(MediaDescription(offered.kind, 0, offered.proto, offered.formats[:1]))
            continue
        media = MediaDescription(
            offered.kind, stream.port, offered.proto, [str(c.payload_type) for c in stream.codecs]
        )
        for codec in stream.codecs:
            encoding = codec.encoding.lower() if codec.is_telephone_event else codec.encoding
            suffix = f"/{codec.channels}" if codec.channels != 1 else ""
            media.attributes.append(("rtpmap", f"{codec.payload_type} {encoding}/{codec.clock_rate}{suffix}"))
            fmtp = offered.fmtp(codec.payload_type)
            if fmtp:
                media.attributes.append(("fmtp", f"{codec.payload_type} {fmtp}"))
        if offered.label is not None:
            media.attributes.append(("label", offered.label))
        if offered.rtcp_mux:
            media.attributes.append(("rtcp-mux", None))
        if stream.crypto is not None:
            media.attributes.append(("crypto", stream.crypto))
        media.attributes.append((stream.direction, None))
        answer.media.append(media)
    return answer


def build_offer(
    labels: list[str],
    ports: list[int],
    codecs: list[CodecSpec],
    *,
    address: str,
    session_id: str,
) -> SessionDescription:
    """The recorder's own offer, for a client that sent an INVITE without SDP (delayed offer)."""
    addrtype = "IP6" if ":" in address else "IP4"
    offer = SessionDescription(
        origin=Origin("callvault", session_id, "1", "IN", addrtype, address),
        session_name="callvault",
        connection=Connection("IN", addrtype, address),
    )
    for label, port in zip(labels, ports, strict=True):
        media = MediaDescription("audio", port, "RTP/AVP", [str(c.payload_type) for c in codecs])
        for codec in codecs:
            encoding = codec.encoding.lower() if codec.is_telephone_event else codec.encoding
            media.attributes.append(("rtpmap", f"{codec.payload_type} {encoding}/{codec.clock_rate}"))
        media.attributes.append(("label", label))
        media.attributes.append(("recvonly", None))
        offer.media.append(media)
    return offer
