"""Log lines that peers cannot forge.

Log messages carry hostile text: SIP Call-IDs, usernames tried at login,
object keys. A CR/LF in such a value would start what looks like a new,
genuine log line; an ANSI escape could rewrite the operator's terminal. The
:class:`SafeFormatter` escapes every control character (and the Unicode line
and bidi-override characters) in the formatted message, and indents every
further line of a traceback, so one record is always one line at the left
margin.
"""

from __future__ import annotations

import logging
import re
import sys

DEFAULT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
CONTINUATION = "\n    | "


def escape_control(text: str) -> str:
    """``text`` with every control character written as an escape (``\\n``, ``\\x1b``, ``\\u2028``)."""

    def one(match: re.Match[str]) -> str:
        char = match.group()
        if char in _NAMED:
            return _NAMED[char]
        return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"

    return _UNSAFE.sub(one, text)


class SafeFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        return escape_control(super().formatMessage(record))

    def format(self, record: logging.LogRecord) -> str:
        first, *rest = super().format(record).split("\n")
        # Only tracebacks and stack traces reach here with newlines (the message is
        # already escaped); they stay readable but can never start a new record.
        return first + "".join(CONTINUATION + escape_control(line) for line in rest)


def configure_logging(level: str, fmt: str = DEFAULT_FORMAT) -> None:
    """Root logging to stderr through :class:`SafeFormatter` (replacing earlier handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter(fmt))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
