"""Signatures of webhook deliveries, and how a receiver checks them.

Every delivery carries ``Callvault-Signature: t=<unix seconds>,v1=<hex>``
where ``v1`` is HMAC-SHA256, keyed with the subscription's secret, of the
timestamp, a dot, and the exact request body. Signing the timestamp with the
body lets a receiver refuse a captured delivery replayed later (it checks the
timestamp against its clock, :data:`DEFAULT_TOLERANCE`); a receiver that wants
no replays at all also remembers the event ids it has seen (``Callvault-Event-Id``).

Receivers may copy :func:`verify_signature` (standard library only).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Callvault-Signature"
DEFAULT_TOLERANCE = 300  # seconds between the signing and the receiving clock


class SignatureMismatch(ValueError):
    """The header is missing, malformed, too old, or does not match the body."""


def signature_header(secret: str, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: str,
    header: str,
    body: bytes,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE,
) -> int:
    """Return the signed timestamp if ``header`` signs ``body`` with ``secret``; else raise."""
    fields: dict[str, list[str]] = {}
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        raise SignatureMismatch("no timestamp (t=) in the signature header") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise SignatureMismatch(
            f"signed {int(current - timestamp)} s away from now (tolerance {tolerance} s)"
        )
    expected = _digest(secret, body, timestamp)
    # Several v1 values may come while a secret is being rotated; any match will do.
    if not any(hmac.compare_digest(expected, candidate) for candidate in fields.get("v1", [])):
        raise SignatureMismatch("the signature does not match the body")
    return timestamp
