"""The hash of one audit log entry (the access trail chained into a tamper-evident log).

Next to the models because migration ``audit_0003`` back-fills existing access
events into the chain and must compute exactly what the running service does
(:mod:`callvault.services.audit_log`); migrations may only import ``db``.

An entry's hash is ``SHA-256(label ‖ prev_hash ‖ "\\n" ‖ body_sha256)`` where the
body digest covers every stored field of the event. Splitting it this way lets
an evidence bundle prove that one recording's entries lead to a signed
checkpoint by listing only the *digests* of the other users' entries in between,
never their content. Neither ``id`` nor ``seq`` is hashed: the order is the
chain itself (each entry names its predecessor), so a moved entry is found by
its link, and a deleted one by the link that no longer matches.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from callvault.db.seal_chain import GENESIS, utc_iso

__all__ = ["GENESIS", "AuditBody", "body_sha256", "chain_hash", "checkpoint_doc"]

_LABEL = b"callvault-audit-log/v1\n"
LOG_NAME = "callvault-audit-log"


@dataclass(frozen=True)
class AuditBody:
    """The stored fields of one event, as hashed."""

    at: datetime
    user_id: int | None
    username: str | None
    action: str
    recording_id: str | None
    detail: str | None
    remote_addr: str | None
    outcome: str

    def to_dict(self) -> dict[str, object]:
        return {
            "at": utc_iso(self.at),
            "user_id": self.user_id,
            "username": self.username,
            "action": self.action,
            "recording_id": self.recording_id,
            "detail": self.detail,
            "remote_addr": self.remote_addr,
            "outcome": self.outcome,
        }


def body_sha256(body: AuditBody | Mapping[str, object]) -> str:
    doc = body.to_dict() if isinstance(body, AuditBody) else dict(body)
    encoded = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def chain_hash(prev_hash: str, body_digest: str) -> str:
    return hashlib.sha256(_LABEL + f"{prev_hash}\n{body_digest}".encode("ascii")).hexdigest()


def checkpoint_doc(seq: int, head: str, at: str, key_id: str) -> dict[str, object]:
    """What a checkpoint signature covers (signed as canonical JSON)."""
    return {"log": LOG_NAME, "seq": seq, "head": head, "at": at, "key_id": key_id}
