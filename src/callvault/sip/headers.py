"""SIP header fields (RFC 3261 §7.3, §20): names, values and the parsed forms routing reads.

Names are matched in any casing and in compact form (``v`` for Via, ``x``
for Session-Expires); values are kept as received. Via, From/To/Contact
(:class:`NameAddr`) and CSeq parse on demand and raise ``ValueError`` naming
the header and what is wrong with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

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

TOKEN = re.compile(r"^[A-Za-z0-9.!%*_+`'~-]+$")


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
