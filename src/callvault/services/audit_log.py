"""The audit log: the one append path of the hash-chained access trail, and its checkpoints.

Every security-relevant event (logins, tokens, searches, views, plays,
downloads, exports, uploads, deletions, policy and user changes, key
operations) is one row of ``access_events`` that names its predecessor's hash
(:mod:`callvault.db.audit_chain`). Appends are serialised so the chain stays
linear: on SQLite every writer already holds the database write lock
(``BEGIN IMMEDIATE``); on PostgreSQL a transaction-scoped advisory lock is
taken before the head is read, and the unique index on ``seq`` is the backstop.

Checkpoints: the server's Ed25519 key signs ``(seq, head hash, time)``, at
least every minute while ``serve`` runs and at shutdown (only when the head
moved). Each is stored in ``audit_checkpoints`` and mirrored to
``audit-log-checkpoint.json`` outside the catalog, so a catalog whose tail was
cut off (and its checkpoints with it) still fails ``callvault audit verify``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from callvault.crypto.secretfile import read_private, write_private
from callvault.crypto.signing import ManifestSigner, canonical_json
from callvault.db.audit_chain import GENESIS, AuditBody, body_sha256, chain_hash, checkpoint_doc
from callvault.db.catalog import Catalog
from callvault.db.models import AccessEvent, AuditCheckpoint
from callvault.db.seal_chain import utc_iso
from callvault.errors import CallvaultError, ConfigError

log = logging.getLogger(__name__)

MIRROR_NAME = "audit-log-checkpoint.json"
_MIRROR_FORMAT = "callvault-audit-checkpoint"
# Any fixed 64-bit number (distinct from the seal log's): serialises appends on PostgreSQL.
_PG_LOCK_KEY = 0x6376617564  # "cvaud"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head: str
    at: str
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        return canonical_json(checkpoint_doc(self.seq, self.head, self.at, self.key_id))

    def to_dict(self) -> dict[str, object]:
        return {
            **checkpoint_doc(self.seq, self.head, self.at, self.key_id),
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, object]) -> Checkpoint:
        """Parse :meth:`to_dict` output; ValueError/KeyError/TypeError when malformed."""
        return cls(
            seq=int(str(doc["seq"])),
            head=str(doc["head"]),
            at=str(doc["at"]),
            key_id=str(doc["key_id"]),
            signature=base64.b64decode(str(doc["signature"]), validate=True),
        )

    @classmethod
    def from_row(cls, row: AuditCheckpoint) -> Checkpoint:
        return cls(row.seq, row.head, utc_iso(row.at), row.key_id, row.signature)


def lock_chain(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})


def _head(session: Session) -> tuple[int, str]:
    row = session.execute(
        select(AccessEvent.seq, AccessEvent.entry_hash)
        .where(AccessEvent.seq.is_not(None))
        .order_by(AccessEvent.seq.desc())
        .limit(1)
    ).first()
    if row is None or row[0] is None or row[1] is None:
        return 0, GENESIS
    return int(row[0]), str(row[1])


def _clip(body: AuditBody) -> AuditBody:
    """The event as the columns store it (hashed exactly as stored)."""
    return AuditBody(
        at=body.at,
        user_id=body.user_id,
        username=body.username[:120] if body.username is not None else None,
        action=body.action[:32],
        recording_id=body.recording_id[:36] if body.recording_id else None,
        detail=(body.detail or "")[:2000] or None,
        remote_addr=body.remote_addr[:64] if body.remote_addr else None,
        outcome=body.outcome[:16],
    )


class AuditLog:
    def __init__(
        self, catalog: Catalog, signer: ManifestSigner | None = None, data_dir: Path | None = None
    ) -> None:
        self._catalog = catalog
        self._signer = signer
        self.mirror_path = data_dir / MIRROR_NAME if data_dir is not None else None
        self._checkpoint_lock = threading.Lock()

    # -- appending -----------------------------------------------------------

    def append(self, session: Session, body: AuditBody) -> None:
        """Chain one event inside the caller's write transaction."""
        self.append_many(session, [body])

    def append_many(self, session: Session, bodies: Iterable[AuditBody]) -> None:
        """Chain several events under one lock (bulk deletions stay one linear chain)."""
        lock_chain(session)
        seq, prev = _head(session)
        rows: list[dict[str, object]] = []
        for raw in bodies:
            body = _clip(raw)
            seq += 1
            this = chain_hash(prev, body_sha256(body))
            rows.append({**_columns(body), "seq": seq, "prev_hash": prev, "entry_hash": this})
            prev = this
        if rows:
            # Core executemany: a retention batch writes hundreds of entries, and the
            # unit of work's per-object bookkeeping cost more than the inserts themselves.
            session.execute(insert(AccessEvent), rows)

    # -- checkpoints -----------------------------------------------------------

    def checkpoint(self) -> Checkpoint | None:
        """Sign the head if it moved since the last checkpoint; returns the newest checkpoint."""
        if self._signer is None:
            raise RuntimeError("audit checkpoints need the server signing key")
        with self._checkpoint_lock:
            with self._catalog.write() as session:
                lock_chain(session)
                seq, head = _head(session)
                last = session.scalars(
                    select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc()).limit(1)
                ).first()
                if seq == 0 or (last is not None and last.seq >= seq):
                    newest = Checkpoint.from_row(last) if last is not None else None
                else:
                    key_id, sign = self._signer.current_key()
                    at = datetime.now(UTC)
                    unsigned = Checkpoint(seq, head, utc_iso(at), key_id, b"")
                    newest = Checkpoint(seq, head, unsigned.at, key_id, sign(unsigned.signed_bytes()))
                    session.add(
                        AuditCheckpoint(seq=seq, head=head, at=at, key_id=key_id, signature=newest.signature)
                    )
            if newest is not None:
                self._mirror(newest)
            return newest

    def _mirror(self, checkpoint: Checkpoint) -> None:
        if self.mirror_path is None:
            return
        try:
            existing = self.read_mirror()
            if existing is not None and existing.seq >= checkpoint.seq:
                return
            if existing is not None and not self._extends(existing):
                # The catalog no longer holds what was signed (truncated or rolled back): keep the evidence.
                log.error(
                    "audit log does not extend its checkpoint at seq %d; run 'callvault audit verify'",
                    existing.seq,
                )
                return
            doc = {"format": _MIRROR_FORMAT, "checkpoint": checkpoint.to_dict()}
            write_private(self.mirror_path, json.dumps(doc, indent=2).encode() + b"\n")
        except CallvaultError as exc:
            # Stored in the catalog already; a stale mirror only weakens truncation detection.
            log.warning("audit checkpoint not mirrored to %s: %s", self.mirror_path, exc.message)

    def _extends(self, checkpoint: Checkpoint) -> bool:
        with self._catalog.read() as session:
            head = session.scalar(select(AccessEvent.entry_hash).where(AccessEvent.seq == checkpoint.seq))
        return head == checkpoint.head

    def read_mirror(self) -> Checkpoint | None:
        if self.mirror_path is None or not self.mirror_path.exists():
            return None
        try:
            doc = json.loads(read_private(self.mirror_path, "audit log checkpoint"))
            if doc.get("format") != _MIRROR_FORMAT:
                raise ValueError("wrong format")
            return Checkpoint.from_dict(doc["checkpoint"])
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
            raise ConfigError(f"audit log checkpoint {self.mirror_path} is malformed") from None

    def checkpoint_quietly(self) -> None:
        """For the periodic task and shutdown: a failed checkpoint is logged, never raised."""
        try:
            self.checkpoint()
        except (CallvaultError, SQLAlchemyError) as exc:
            reason = exc.message if isinstance(exc, CallvaultError) else type(exc).__name__
            log.warning("audit log checkpoint failed: %s", reason)


def _columns(body: AuditBody) -> dict[str, object]:
    return {
        "at": body.at,
        "user_id": body.user_id,
        "username": body.username,
        "action": body.action,
        "recording_id": body.recording_id,
        "detail": body.detail,
        "remote_addr": body.remote_addr,
        "outcome": body.outcome,
    }
