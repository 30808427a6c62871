"""The hash of one entry of the seal log (the chain every signed manifest is appended to).

It lives next to the models because the migration that back-fills the log for
recordings sealed before the log existed must compute exactly the same hashes
as the running service (:mod:`callvault.services.seal_log`), and migrations may
only import the ``db`` package.

An entry's hash covers its sequence number, the recording id, the SHA-256 of
the signed manifest text, the previous entry's hash and the time, so changing,
removing or re-ordering any entry breaks every link after it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

GENESIS = "0" * 64
_LABEL = b"callvault-seal-log/v1\n"


def utc_iso(value: datetime) -> str:
    # SQLite returns naive datetimes for timezone-aware columns; they are UTC.
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def manifest_sha256(manifest: str) -> str:
    return hashlib.sha256(manifest.encode("utf-8")).hexdigest()


def entry_hash(seq: int, recording_id: str, manifest_digest: str, prev_hash: str, at: datetime) -> str:
    # Newline-separated fields: none of them (integers, UUIDs, hex, ISO times) can hold one.
    fields = f"{seq}\n{recording_id}\n{manifest_digest}\n{prev_hash}\n{utc_iso(at)}"
    return hashlib.sha256(_LABEL + fields.encode("utf-8")).hexdigest()
