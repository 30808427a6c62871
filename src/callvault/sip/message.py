"""SIP requests and responses (RFC 3261 §7, §20): parse and serialise.

Sans-IO: bytes in, objects out. Every malformed input raises ``ValueError``
whose message names the offending part, so the transport can log it and
answer 400 when enough of the message was readable.

Tolerances taken from real session recording clients:

* header folding (continuation lines), compact header names, any casing;
* LF-only line ends;
* a wrong top-level ``Content-Length`` on UDP: the datagram is the message,
  so the actual bytes after the blank line are the body;
* on stream transports ``Content-Length`` frames the message and is required.

Header fields and their parsed forms live in :mod:`callvault.sip.headers`,
head splitting and stream framing in :mod:`callvault.sip.framing`; their
public names are importable from here too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from callvault.sip.framing import (
    DEFAULT_MAX_MESSAGE_BYTES,
    content_length,
    frame_stream_message,
    parse_head,
    split_head,
)
from callvault.sip.headers import (
    COMPACT_FORMS,
    TOKEN,
    CSeq,
    Headers,
    NameAddr,
    Via,
    canonical_name,
    parse_params,
    split_commas,
)

__all__ = [
    "COMPACT_FORMS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MAGIC_COOKIE",
    "REASON_PHRASES",
    "SIP_VERSION",
    "CSeq",
    "Headers",
    "NameAddr",
    "SipMessage",
    "SipRequest",
    "SipResponse",
    "Via",
    "canonical_name",
    "frame_stream_message",
    "make_response",
    "parse_message",
    "parse_params",
    "readable_for_response",
    "split_commas",
    "stamp_received",
]

SIP_VERSION = "SIP/2.0"
MAGIC_COOKIE = "z9hG4bK"
_REQUIRED_REQUEST_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


@dataclass
class _Message:
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def call_id(self) -> str:
        return self._required("Call-ID")

    @property
    def cseq(self) -> CSeq:
        return CSeq.parse(self._required("CSeq"))

    @property
    def vias(self) -> list[Via]:
        return [Via.parse(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        values = self.headers.get_all("Via")
        if not values:
            raise ValueError("missing Via header")
        return Via.parse(values[0])

    @property
    def from_addr(self) -> NameAddr:
        return NameAddr.parse(self._required("From"))

    @property
    def to_addr(self) -> NameAddr:
        return NameAddr.parse(self._required("To"))

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None or not value.strip():
            raise ValueError(f"missing {name} header")
        return value

    def _serialise(self, start_line: str) -> bytes:
        lines = [start_line]
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + self.body


@dataclass
class SipRequest(_Message):
    method: str = "OPTIONS"
    uri: str = ""

    def serialise(self) -> bytes:
        return self._serialise(f"{self.method} {self.uri} {SIP_VERSION}")

    def validate(self) -> None:
        """Check the headers every request must carry (RFC 3261 §8.1.1) parse."""
        for name in _REQUIRED_REQUEST_HEADERS:
            self._required(name)
        self.top_via  # noqa: B018 - parse for the error
        self.from_addr  # noqa: B018
        self.to_addr  # noqa: B018
        cseq = self.cseq
        if cseq.method != self.method and not (self.method == "ACK" and cseq.method == "INVITE"):
            if self.method != "CANCEL" or cseq.method != "CANCEL":
                raise ValueError(f"CSeq method {cseq.method} does not match request method {self.method}")


@dataclass
class SipResponse(_Message):
    status: int = 200
    reason: str = "OK"

    def serialise(self) -> bytes:
        return self._serialise(f"{SIP_VERSION} {self.status} {self.reason}")


SipMessage = SipRequest | SipResponse

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    420: "Bad Extension",
    422: "Session Interval Too Small",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    513: "Message Too Large",
}


def parse_message(
    data: bytes, *, stream: bool = False, max_size: int = DEFAULT_MAX_MESSAGE_BYTES
) -> SipRequest | SipResponse:
    """Parse one whole SIP message.

    ``stream=False`` (UDP): the datagram is the message; the body is whatever
    follows the blank line, whatever ``Content-Length`` says.
    ``stream=True``: ``data`` was framed with :func:`frame_stream_message`; the
    body is exactly ``Content-Length`` bytes.
    """
    if len(data) > max_size:
        raise ValueError(f"message of {len(data)} bytes exceeds the {max_size}-byte limit")
    head, body = split_head(data)
    start_line, headers = parse_head(head)
    length = content_length(headers)
    if stream:
        if length is None:
            raise ValueError("Content-Length is required on stream transports")
        if len(body) < length:
            raise ValueError(f"body has {len(body)} bytes, Content-Length says {length}")
        body = body[:length]
    parts = start_line.split(" ", 2)
    if start_line.startswith("SIP/"):
        if len(parts) < 2 or parts[0] != SIP_VERSION:
            raise ValueError(f"status line {start_line[:60]!r}: unsupported version")
        if not parts[1].isdigit() or not 100 <= int(parts[1]) <= 699:
            raise ValueError(f"status line {start_line[:60]!r}: status code must be 100-699")
        return SipResponse(
            headers=headers, body=body, status=int(parts[1]), reason=parts[2] if len(parts) > 2 else ""
        )
    if len(parts) != 3 or parts[2] != SIP_VERSION:
        raise ValueError(f"request line {start_line[:60]!r}: expected '<METHOD> <URI> SIP/2.0'")
    if not TOKEN.match(parts[0]):
        raise ValueError(f"request line {start_line[:60]!r}: method is not a token")
    if not parts[1] or " " in parts[1]:
        raise ValueError(f"request line {start_line[:60]!r}: bad Request-URI")
    return SipRequest(headers=headers, body=body, method=parts[0].upper(), uri=parts[1])


def readable_for_response(data: bytes) -> SipRequest | None:
    """Best-effort parse of a broken request: enough to answer 400, else None.

    RFC 3261 §8.2 wants an answer when possible; a response needs Via, From,
    To, Call-ID and CSeq copied from the request.
    """
    try:
        head, _ = split_head(data[:DEFAULT_MAX_MESSAGE_BYTES])
        text = head.decode("utf-8", errors="replace").replace("\r\n", "\n")
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return None
        parts = lines[0].split(" ")
        if not parts[0] or not TOKEN.match(parts[0]) or parts[0].startswith("SIP/"):
            return None
        headers = Headers()
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep and TOKEN.match(name.strip()):
                headers.add(name, value)
        request = SipRequest(headers=headers, method=parts[0].upper(), uri=parts[1] if len(parts) > 1 else "")
        for name in _REQUIRED_REQUEST_HEADERS:
            request._required(name)
        request.top_via  # noqa: B018 - must be usable to route the response
        return request
    except ValueError:
        return None


def make_response(
    request: SipRequest,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
) -> SipResponse:
    """A response copying Via, From, To, Call-ID and CSeq (RFC 3261 §8.2.6.2)."""
    response = SipResponse(status=status, reason=reason or REASON_PHRASES.get(status, "Unknown"), body=body)
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        for value in request.headers.get_all(name) if name == "Via" else [request.headers.get(name) or ""]:
            response.headers.add(name, value)
    if to_tag is not None and status != 100:
        to_value = request.headers.get("To") or ""
        if "tag" not in NameAddr.parse(to_value).params:
            response.headers.set("To", f"{to_value};tag={to_tag}")
    for name, value in headers:
        response.headers.add(name, value)
    return response


def stamp_received(request: SipRequest, host: str, port: int) -> None:
    """Add ``received``/``rport`` to the top Via (RFC 3261 §18.2.1, RFC 3581).

    Responses then go back to where the request came from, which is what
    clients behind NAT and SBCs with several interfaces expect.
    """
    values = request.headers.get_all("Via")
    if not values:
        return
    top = Via.parse(values[0])
    params = dict(top.params)
    if top.host != host:
        params["received"] = host
    if "rport" in params:
        params["rport"] = str(port)
        params["received"] = host
    request.headers.remove("Via")
    request.headers.add("Via", str(Via(top.transport, top.host, top.port, params)))
    for value in values[1:]:
        request.headers.add("Via", value)
