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
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

SIP_VERSION = "SIP/2.0"
MAGIC_COOKIE = "z9hG4bK"
DEFAULT_MAX_MESSAGE_BYTES = 65535

COMPACT_FORMS: dict[str, str] = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
    "c": "Content-Type",
    "k": "Supported",
    "s": "Subject",
    "e": "Content-Encoding",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
    "x": "Session-Expires",
}

_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Length",
        "Content-Type",
        "Content-Disposition",
        "Content-Encoding",
        "Supported",
        "Require",
        "Unsupported",
        "Allow",
        "Accept",
        "Max-Forwards",
        "User-Agent",
        "Server",
        "Subject",
        "Event",
        "Refer-To",
        "Allow-Events",
        "Session-Expires",
        "Min-SE",
        "Retry-After",
        "Warning",
        "Record-Route",
        "Route",
        "Reason",
    )
}
_CANONICAL["www-authenticate"] = "WWW-Authenticate"
_CANONICAL["cseq"] = "CSeq"
_CANONICAL["call-id"] = "Call-ID"

# Headers whose comma-separated values are separate header field values (RFC 3261 §7.3.1).
_MULTI_VALUE = {
    "via",
    "contact",
    "supported",
    "require",
    "unsupported",
    "allow",
    "accept",
    "record-route",
    "route",
}

_TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")
_REQUIRED_REQUEST_HEADERS = ("Via", "From", "To", "Call-ID", "CSeq")


def canonical_name(name: str) -> str:
    """Full, canonically cased header name for ``name`` (compact or any casing)."""
    stripped = name.strip()
    lowered = stripped.lower()
    if lowered in COMPACT_FORMS:
        return COMPACT_FORMS[lowered]
    return _CANONICAL.get(lowered, stripped)


def split_commas(value: str) -> list[str]:
    """Split a header value on commas outside quotes and angle brackets."""
    parts: list[str] = []
    current: list[str] = []
    in_quotes = in_angle = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and in_quotes:
            escaped = True
        elif char == '"':
            in_quotes = not in_quotes
        elif char == "<" and not in_quotes:
            in_angle = True
        elif char == ">" and not in_quotes:
            in_angle = False
        elif char == "," and not in_quotes and not in_angle:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def parse_params(text: str) -> dict[str, str | None]:
    """``;a=b;c`` → {"a": "b", "c": None}; names lower-cased, quotes removed."""
    params: dict[str, str | None] = {}
    for piece in text.split(";"):
        piece = piece.strip()
        if not piece:
            continue
        name, sep, value = piece.partition("=")
        cleaned = value.strip()
        if len(cleaned) >= 2 and cleaned[0] == cleaned[-1] == '"':
            cleaned = cleaned[1:-1]
        params[name.strip().lower()] = cleaned if sep else None
    return params


class Headers:
    """Ordered header fields; lookup by any name form, values kept as received."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items:
            self.add(name, value)

    def add(self, name: str, value: str) -> None:
        self._items.append((canonical_name(name), value.strip()))

    def set(self, name: str, value: str) -> None:
        """Replace every field of ``name`` by one, at the first one's position."""
        canonical = canonical_name(name)
        for index, (existing, _) in enumerate(self._items):
            if existing.lower() == canonical.lower():
                self._items[index] = (canonical, value)
                self._items = [
                    item
                    for i, item in enumerate(self._items)
                    if i <= index or item[0].lower() != canonical.lower()
                ]
                return
        self._items.append((canonical, value))

    def remove(self, name: str) -> None:
        canonical = canonical_name(name).lower()
        self._items = [item for item in self._items if item[0].lower() != canonical]

    def get(self, name: str, default: str | None = None) -> str | None:
        canonical = canonical_name(name).lower()
        for existing, value in self._items:
            if existing.lower() == canonical:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``; multi-value headers are split on commas."""
        canonical = canonical_name(name).lower()
        values: list[str] = []
        for existing, value in self._items:
            if existing.lower() == canonical:
                values.extend(split_commas(value) if canonical in _MULTI_VALUE else [value])
        return values

    def tokens(self, name: str) -> frozenset[str]:
        """Lower-cased option tags of Require/Supported-style headers."""
        return frozenset(value.strip().lower() for value in self.get_all(name) if value.strip())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        copy = Headers()
        copy._items = list(self._items)
        return copy


@dataclass(frozen=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None]

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        return f"{self.host}:{self.port}" if self.port is not None else self.host

    @classmethod
    def parse(cls, value: str) -> Via:
        protocol, _, rest = value.strip().partition(" ")
        pieces = [p.strip() for p in protocol.split("/")]
        if len(pieces) != 3 or pieces[0].upper() != "SIP":
            raise ValueError(f"Via {value!r}: expected 'SIP/2.0/<transport> host[:port]'")
        sent_by, _, params = rest.strip().partition(";")
        sent_by = sent_by.strip()
        if not sent_by:
            raise ValueError(f"Via {value!r}: missing sent-by host")
        host, port = _split_host_port(sent_by, f"Via {value!r}")
        return cls(pieces[2].upper(), host, port, parse_params(params))

    def __str__(self) -> str:
        text = f"SIP/2.0/{self.transport} {self.sent_by}"
        for name, value in self.params.items():
            text += f";{name}" if value is None else f";{name}={value}"
        return text


def _split_host_port(text: str, where: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{where}: unterminated IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = text.partition(":")
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{where}: port {port_text!r} is not a number between 1 and 65535")
    return host, int(port_text)


@dataclass(frozen=True)
class NameAddr:
    """From/To/Contact value: optional display name, URI and header parameters."""

    display_name: str | None
    uri: str
    params: dict[str, str | None]

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @classmethod
    def parse(cls, value: str) -> NameAddr:
        text = value.strip()
        if "<" in text:
            start = text.index("<")
            end = text.find(">", start)
            if end < 0:
                raise ValueError(f"address {value!r}: '<' without '>'")
            display = text[:start].strip().strip('"').strip() or None
            return cls(display, text[start + 1 : end].strip(), parse_params(text[end + 1 :]))
        uri, _, params = text.partition(";")
        if not uri.strip():
            raise ValueError(f"address {value!r}: empty URI")
        return cls(None, uri.strip(), parse_params(params))

    def __str__(self) -> str:
        text = f'"{self.display_name}" <{self.uri}>' if self.display_name else f"<{self.uri}>"
        for name, value in self.params.items():
            text += f";{name}" if value is None else f";{name}={value}"
        return text


@dataclass(frozen=True)
class CSeq:
    number: int
    method: str

    @classmethod
    def parse(cls, value: str) -> CSeq:
        parts = value.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"CSeq {value!r}: expected '<number> <METHOD>'")
        number = int(parts[0])
        if number >= 2**31:
            raise ValueError(f"CSeq {value!r}: sequence number must be below 2**31")
        return cls(number, parts[1].upper())

    def __str__(self) -> str:
        return f"{self.number} {self.method}"


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


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = data.find(separator)
        if index >= 0:
            return data[:index], data[index + len(separator) :]
    return data, b""


def _parse_head(head: bytes) -> tuple[str, Headers]:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"message head is not UTF-8 (byte {exc.start})") from None
    raw_lines = text.replace("\r\n", "\n").split("\n")
    while raw_lines and not raw_lines[0].strip():
        raw_lines.pop(0)  # RFC 3261 §7.5: ignore CRLFs before the start line
    if not raw_lines:
        raise ValueError("empty message")
    start_line = raw_lines[0].strip()
    unfolded: list[str] = []
    for line in raw_lines[1:]:
        if line[:1] in (" ", "\t") and unfolded:
            unfolded[-1] += " " + line.strip()
        elif line.strip():
            unfolded.append(line)
    headers = Headers()
    for line in unfolded:
        name, sep, value = line.partition(":")
        if not sep or not _TOKEN.match(name.strip()):
            raise ValueError(f"header line {line[:60]!r} is not 'Name: value'")
        headers.add(name, value)
    return start_line, headers


def _content_length(headers: Headers) -> int | None:
    value = headers.get("Content-Length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise ValueError(f"Content-Length {value!r} is not a non-negative integer")
    return int(value)


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
    head, body = _split_head(data)
    start_line, headers = _parse_head(head)
    length = _content_length(headers)
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
    if not _TOKEN.match(parts[0]):
        raise ValueError(f"request line {start_line[:60]!r}: method is not a token")
    if not parts[1] or " " in parts[1]:
        raise ValueError(f"request line {start_line[:60]!r}: bad Request-URI")
    return SipRequest(headers=headers, body=body, method=parts[0].upper(), uri=parts[1])


def frame_stream_message(buffer: bytearray, max_size: int = DEFAULT_MAX_MESSAGE_BYTES) -> bytes | None:
    """Cut one message off the front of a stream buffer, or None if incomplete.

    Keep-alive CRLFs (RFC 5626 §3.5.1) are discarded. Raises ``ValueError``
    when the stream cannot be re-synchronised (no Content-Length, too large);
    the connection must then be closed.
    """
    while buffer[:2] == b"\r\n" or buffer[:1] == b"\n":
        del buffer[: 2 if buffer[:2] == b"\r\n" else 1]
    crlf, lf = buffer.find(b"\r\n\r\n"), buffer.find(b"\n\n")
    candidates = [(i, n) for i, n in ((crlf, 4), (lf, 2)) if i >= 0]
    if not candidates:
        if len(buffer) > max_size:
            raise ValueError(f"no end of headers within {max_size} bytes")
        return None
    end, sep_len = min(candidates)
    _, headers = _parse_head(bytes(buffer[:end]))
    length = _content_length(headers)
    if length is None:
        raise ValueError("Content-Length is required on stream transports")
    total = end + sep_len + length
    if total > max_size:
        raise ValueError(f"message of {total} bytes exceeds the {max_size}-byte limit")
    if len(buffer) < total:
        return None
    message = bytes(buffer[:total])
    del buffer[:total]
    return message


def readable_for_response(data: bytes) -> SipRequest | None:
    """Best-effort parse of a broken request: enough to answer 400, else None.

    RFC 3261 §8.2 wants an answer when possible; a response needs Via, From,
    To, Call-ID and CSeq copied from the request.
    """
    try:
        head, _ = _split_head(data[:DEFAULT_MAX_MESSAGE_BYTES])
        text = head.decode("utf-8", errors="replace").replace("\r\n", "\n")
        lines = [line for line in text.split("\n") if line.strip()]
        if not lines:
            return None
        parts = lines[0].split(" ")
        if not parts[0] or not _TOKEN.match(parts[0]) or parts[0].startswith("SIP/"):
            return None
        headers = Headers()
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep and _TOKEN.match(name.strip()):
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
