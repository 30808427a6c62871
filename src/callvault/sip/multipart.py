"""MIME multipart bodies as SIP recording clients really send them (RFC 2046, RFC 5621).

A SIPREC INVITE carries an SDP part and a recording metadata part in one
``multipart/mixed`` body. Session recording clients frame that body in many
slightly wrong ways, so the parser is deliberately forgiving: quoted or bare
``boundary`` parameter, or none at all (guessed from the first ``--xxx`` line),
CRLF or LF-only line ends, padding after delimiters, preamble and epilogue, a
missing closing delimiter, part-level ``Content-Length`` that may be wrong, and
stray parts framed by a different boundary. It still refuses what it cannot
make sense of with a ``ValueError`` that says why.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "MAX_MULTIPART_BYTES",
    "MAX_PARTS",
    "BodyPart",
    "build_multipart",
    "content_type_essence",
    "content_type_params",
    "parse_multipart",
]

# SIP over TCP/TLS allows large bodies, but a SIPREC offer is a few KiB; a
# limit keeps a hostile client from making the parser scan megabytes.
MAX_MULTIPART_BYTES = 2 * 1024 * 1024
MAX_PARTS = 16
_MAX_HEADER_LINES = 64
_MAX_BOUNDARY_LEN = 200

_PARAM_RE = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"?|[^;]*)')
_GUESS_RE = re.compile(rb"^--([!-~]{1,200}?)(?:--)?[ \t]*\r?$", re.MULTILINE)
_HEADER_NAME_RE = re.compile(rb"^[!-9;-~]+$")
# A stray delimiter only counts when a MIME header follows it, so SDP, XML and
# other text that happens to start a line with "--" is left alone.
_STRAY_OPEN_RE = re.compile(
    rb"^--([!-~]{1,200}?)[ \t]*\r?\n(?=content-(?:type|disposition|length|id)[ \t]*:)",
    re.MULTILINE | re.IGNORECASE,
)
_BCHARS_RE = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$")


@dataclass(frozen=True, slots=True)
class BodyPart:
    """One body part: its Content-Type, all its headers (names lower-cased) and its bytes."""

    content_type: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def essence(self) -> str:
        return content_type_essence(self.content_type)

    @property
    def disposition(self) -> str:
        """The Content-Disposition type (``session``, ``recording-session``…), lower-case, or ``""``."""
        return content_type_essence(self.headers.get("content-disposition", ""))


def content_type_essence(content_type: str) -> str:
    """``type/subtype`` lower-cased, without parameters or stray whitespace."""
    head = content_type.split(";", 1)[0]
    return "".join(head.split()).lower()


def content_type_params(content_type: str) -> dict[str, str]:
    """Parameters of a Content-Type value, names lower-cased, quotes removed."""
    params: dict[str, str] = {}
    semi = content_type.find(";")
    if semi < 0:
        return params
    for match in _PARAM_RE.finditer(content_type[semi:]):
        name = match.group(1).lower()
        value = match.group(2).strip()
        if value.startswith('"'):
            value = value[1:-1] if len(value) > 1 and value.endswith('"') else value[1:]
            value = re.sub(r"\\(.)", r"\1", value)
        params.setdefault(name, value)
    return params


def _guess_boundary(body: bytes) -> bytes | None:
    match = _GUESS_RE.search(body)
    if match is None:
        return None
    return match.group(1)


def _delimiter_re(boundary: bytes) -> re.Pattern[bytes]:
    # Transport padding (spaces/tabs) after a delimiter is allowed by RFC 2046
    # and Oracle SBCs actually send it after the closing one.
    return re.compile(rb"^--" + re.escape(boundary) + rb"(--)?[ \t]*\r?$", re.MULTILINE)


def _line_start_before(body: bytes, pos: int) -> int:
    """Where the content before a delimiter at ``pos`` ends (the line break belongs to the delimiter)."""
    if body[pos - 2 : pos] == b"\r\n":
        return pos - 2
    if body[pos - 1 : pos] == b"\n":
        return pos - 1
    return pos


def _after_line(body: bytes, end: int) -> int:
    return end + 1 if body[end : end + 1] == b"\n" else end


def _split(body: bytes, pattern: re.Pattern[bytes]) -> tuple[list[tuple[int, int]], bool]:
    """Content spans between delimiter lines and whether a closing delimiter was seen."""
    spans: list[tuple[int, int]] = []
    start: int | None = None
    for match in pattern.finditer(body):
        if start is not None:
            spans.append((start, max(start, _line_start_before(body, match.start()))))
        if match.group(1):
            return spans, True
        start = _after_line(body, match.end())
    if start is not None:
        spans.append((start, len(body)))
    return spans, False


def _parse_headers(raw: bytes) -> tuple[dict[str, str], int]:
    """Header block at the start of ``raw``: (headers, offset where the part body starts)."""
    headers: dict[str, str] = {}
    pos = 0
    last: str | None = None
    count = 0
    while pos < len(raw):
        nl = raw.find(b"\n", pos)
        line_end = len(raw) if nl < 0 else nl
        next_pos = len(raw) if nl < 0 else nl + 1
        line = raw[pos:line_end].rstrip(b"\r")
        if not line.strip():
            return headers, next_pos
        if line[:1] in (b" ", b"\t") and last is not None:
            headers[last] += " " + line.strip().decode("utf-8", "replace")
            pos = next_pos
            continue
        name, colon, value = line.partition(b":")
        name = name.strip()
        if not colon or not _HEADER_NAME_RE.match(name):
            # No blank line between headers and body: the body starts here.
            return headers, pos
        count += 1
        if count > _MAX_HEADER_LINES:
            raise ValueError(f"multipart body part has more than {_MAX_HEADER_LINES} header lines")
        key = name.decode("ascii").lower()
        text = value.strip().decode("utf-8", "replace")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
        last = key
        pos = next_pos
    return headers, pos


def _make_part(raw: bytes, unterminated: bool) -> BodyPart | None:
    if not raw.strip():
        return None
    headers, offset = _parse_headers(raw)
    body = raw[offset:]
    declared = headers.get("content-length", "").strip()
    if declared.isdigit():
        length = int(declared)
        # Part Content-Length is often wrong (computed before a rewrite), so the
        # delimiter wins; the length is only trusted to cut off trailing padding,
        # or an epilogue when the closing delimiter is missing.
        if length < len(body) and (unterminated or not body[length:].strip()):
            body = body[:length]
    content_type = headers.get("content-type", "text/plain")
    return BodyPart(content_type=content_type, headers=headers, body=body)


def _split_stray(raw: bytes) -> list[bytes]:
    """Split a part's raw bytes where parts framed by another boundary begin."""
    opens = list(_STRAY_OPEN_RE.finditer(raw))
    if not opens:
        return [raw]
    segments = [raw[: _line_start_before(raw, opens[0].start())]]
    for index, match in enumerate(opens):
        seg_end = len(raw)
        if index + 1 < len(opens):
            seg_end = _line_start_before(raw, opens[index + 1].start())
        segment = raw[match.end() : seg_end]
        close = _delimiter_re(match.group(1)).search(segment)
        if close is not None and close.group(1):
            segment = segment[: _line_start_before(segment, close.start())]
        segments.append(segment)
    return segments


def parse_multipart(
    content_type: str,
    body: bytes,
    *,
    max_size: int = MAX_MULTIPART_BYTES,
    max_parts: int = MAX_PARTS,
) -> list[BodyPart]:
    """Split a ``multipart/*`` body into its parts, tolerating real-world framing errors."""
    essence = content_type_essence(content_type)
    if not essence.startswith("multipart/"):
        raise ValueError(f"Content-Type {essence or '(empty)'!r} is not multipart")
    if len(body) > max_size:
        raise ValueError(f"multipart body of {len(body)} bytes exceeds the limit of {max_size}")
    boundary_text = content_type_params(content_type).get("boundary", "")
    boundary = boundary_text.encode("utf-8", "replace") if boundary_text else None
    if boundary is not None and len(boundary) > _MAX_BOUNDARY_LEN:
        raise ValueError(f"multipart boundary is longer than {_MAX_BOUNDARY_LEN} characters")

    spans: list[tuple[int, int]] = []
    closed = False
    if boundary is not None:
        spans, closed = _split(body, _delimiter_re(boundary))
    if not spans:
        # No boundary parameter, or one that never occurs in the body: some
        # SRCs get the header wrong but frame the body consistently.
        guessed = _guess_boundary(body)
        if guessed is None or guessed == boundary:
            if boundary is None:
                raise ValueError("multipart body has no boundary parameter and no '--boundary' line")
            raise ValueError(f"multipart body has no delimiter line for boundary {boundary_text!r}")
        spans, closed = _split(body, _delimiter_re(guessed))

    parts: list[BodyPart] = []
    for index, (start, end) in enumerate(spans):
        raw = body[start:end]
        last = index == len(spans) - 1
        head = _make_part(raw, unterminated=last and not closed)
        if head is None:
            continue
        segments = [raw] if head.essence.startswith("multipart/") else _split_stray(raw)
        for seg_index, segment in enumerate(segments):
            unterminated = last and not closed and seg_index == len(segments) - 1
            part = head if len(segments) == 1 else _make_part(segment, unterminated)
            if part is None:
                continue
            parts.append(part)
            if len(parts) > max_parts:
                raise ValueError(f"multipart body has more than {max_parts} parts")
    if not parts:
        raise ValueError("multipart body contains no parts")
    return parts


def _header_name(name: str) -> str:
    return "-".join(word.capitalize() for word in name.split("-"))


def build_multipart(
    parts: Sequence[BodyPart], boundary: str | None = None, *, subtype: str = "mixed"
) -> tuple[str, bytes]:
    """Frame ``parts`` as ``multipart/<subtype>`` with CRLF line ends: ``(content_type, body)``."""
    if not parts:
        raise ValueError("a multipart body needs at least one part")
    if boundary is None:
        boundary = "callvault-" + secrets.token_hex(12)
    if not _BCHARS_RE.match(boundary):
        raise ValueError(f"invalid multipart boundary {boundary!r} (RFC 2046: 1-70 bchars)")
    delimiter = b"--" + boundary.encode("ascii")
    chunks: list[bytes] = []
    for part in parts:
        if re.search(rb"(?m)^" + re.escape(delimiter), part.body):
            raise ValueError(f"boundary {boundary!r} occurs inside a part body")
        lines = [f"Content-Type: {part.content_type}"]
        for name, value in part.headers.items():
            if name.lower() == "content-type":
                continue
            if "\n" in value or "\r" in value or "\n" in name or ":" in name:
                raise ValueError(f"invalid header {name!r} in multipart body part")
            lines.append(f"{_header_name(name)}: {value}")
        chunks.append(
            delimiter + b"\r\n" + "\r\n".join(lines).encode("utf-8") + b"\r\n\r\n" + part.body + b"\r\n"
        )
    chunks.append(delimiter + b"--\r\n")
    needs_quotes = any(c in boundary for c in " '()+,/:=?")
    param = f'"{boundary}"' if needs_quotes else boundary
    return f"multipart/{subtype};boundary={param}", b"".join(chunks)
