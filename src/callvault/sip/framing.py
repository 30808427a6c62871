"""Where a SIP message's head ends, what its header block says, and stream framing.

Tolerances taken from real session recording clients: LF-only line ends,
header folding (continuation lines), CRLFs before the start line. On stream
transports (TCP, TLS) ``Content-Length`` frames the message and is required;
keep-alive CRLFs between messages are discarded.
"""

from __future__ import annotations

from callvault.sip.headers import TOKEN, Headers

DEFAULT_MAX_MESSAGE_BYTES = 65535


def split_head(data: bytes) -> tuple[bytes, bytes]:
    """Head and body of ``data``, split at the first blank line (CRLF or LF)."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        index = data.find(separator)
        if index >= 0:
            return data[:index], data[index + len(separator) :]
    return data, b""


def parse_head(head: bytes) -> tuple[str, Headers]:
    """Start line and unfolded header fields of a message head."""
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
        if not sep or not TOKEN.match(name.strip()):
            raise ValueError(f"header line {line[:60]!r} is not 'Name: value'")
        headers.add(name, value)
    return start_line, headers


def content_length(headers: Headers) -> int | None:
    """``Content-Length`` as a number, None when absent."""
    value = headers.get("Content-Length")
    if value is None:
        return None
    if not value.strip().isdigit():
        raise ValueError(f"Content-Length {value!r} is not a non-negative integer")
    return int(value)


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
    _, headers = parse_head(bytes(buffer[:end]))
    length = content_length(headers)
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
